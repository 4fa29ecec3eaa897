"""The search study end to end on tiny settings: every part runs through the real CLI and Ray, and the report says
what each part measured."""
from __future__ import annotations

import pytest

from benchmarks.search_study import REFERENCES, StudyPlan, run_study
from attnas.evaluators import DataConfig, ProxyConfig


@pytest.mark.slow
def test_the_study_runs_every_part_and_reports_it(tmp_path, ray_local, monkeypatch):
    monkeypatch.setenv("ATTNAS_CACHE_DIR", str(tmp_path / "cache"))
    data = DataConfig(task="odd_one_out", train_size=64, validation_size=32, test_size=32)
    base = ProxyConfig(data=data, epochs=1, batch_size=16, eval_batch_size=32, threads=1, measure_latency=False,
                       backbone_args={"stem_width": 8, "widths": [8, 16], "strides": [[1, 2, 2], [1, 1, 1]],
                                      "stem_stride": [1, 2, 2], "stem_kernel": [1, 3, 3]})
    transfer = ProxyConfig(data=DataConfig(task="reappear", fields={"frames": 6, "size": 32}, train_size=32,
                                           validation_size=16, test_size=16),
                           backbone="resnet26", backbone_args={"width_multiplier": 0.0625}, at=("conv3:1",),
                           epochs=1, batch_size=16, threads=1, measure_latency=False)
    # two supernet epochs (the study's 12 and 30 s floor would make this the suite's longest test)
    plan = StudyPlan(search_seeds=1, trials=2, retrain_seeds=2, transfer_seeds=1, transfer_train=32, cost_trials=2,
                     expected="seconds", differentiable_epochs=2, differentiable_min_seconds=1.0)
    report = run_study(plan, tmp_path / "study", base=base, transfer=transfer, workers=2, space="small")

    for controller in ("random", "evolution", "bayesian", "tpe", "differentiable (seed 0"):
        assert f"| {controller}" in report
    # the best-so-far row of a search is what its history holds
    from attnas.experiments.run_folder import open_run

    values = [r.value for r in open_run(tmp_path / "study" / "random-s0").history().trials()]
    row = next(line for line in report.splitlines() if line.startswith("| random |"))
    assert row.split(" | ")[2] == f"{100 * max(values):.1f}"
    searched = [line for line in report.splitlines() if line.startswith("| `searched ")]
    assert len(searched) == 2, "the best searched cell is re-trained and transferred"
    for name in REFERENCES:  # in the re-training and transfer tables (and maybe on the Pareto front)
        shown = "backbone alone" if name == "none" else name
        assert sum(line.startswith(f"| {shown} |") for line in report.splitlines()) >= 2
    assert "### 5. Cost-aware search and the Pareto front" in report and "on the front" in report
    runs = sorted(p.name for p in (tmp_path / "study").iterdir() if (p / "run.json").exists())
    assert runs == ["bayesian-s0", "differentiable-s0", "evolution-macs-s0", "evolution-s0", "random-s0", "tpe-s0"]
    # a second call reuses everything: no search and no trial runs again
    again = run_study(plan, tmp_path / "study", base=base, transfer=transfer, workers=2, space="small")
    strip = [line for line in again.splitlines() if "The study took" not in line]
    assert strip == [line for line in report.splitlines() if "The study took" not in line]
