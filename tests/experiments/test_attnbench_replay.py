"""The simulated evaluator replays an AttnBench table (`evaluator: {kind: simulated, table: ...}`): through the CLI
on a real run folder, on the tiny table the build command makes (tests/attnbench_tables.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from attnas.experiments.cli import main
from attnas.experiments.config import experiment_from_data
from attnas.experiments.history import COMPLETE
from attnas.experiments.run_folder import open_run
from attnas.search_space import CellSpec, load_space, load_zoo
from attnas.search_space import attnbench
from attnas.search_space.attnbench import load_table
from attnas.search_space.schema import ConfigError
from tests.attnbench_tables import TINY_CELLS


def write_experiment(folder: Path, table: Path, **changes) -> str:
    data = {"name": "replay", "space": "tiny", "controller": {"name": "random"},
            "evaluator": {"kind": "simulated", "table": str(table), "epochs": load_table(table).epochs},
            "budget": {"trials": 13}, "concurrency": 2, "early_stopping": {"scheduler": "none"}, **changes}
    path = folder / "replay.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.mark.slow
def test_a_search_replays_the_table_and_a_cell_it_lacks_fails_with_one_line(tmp_path, capsys, ray_local,
                                                                             tiny_attnbench_table):
    table = load_table(tiny_attnbench_table)
    path = write_experiment(tmp_path, tiny_attnbench_table)
    assert main(["search", path, "--dry-run"]) == 0
    assert f"scores replayed from {tiny_attnbench_table}: PARTIAL AttnBench table, {TINY_CELLS} cells of the " \
           f"space's 13" in capsys.readouterr().out
    assert main(["search", path, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    run_dir = tmp_path / "runs" / "replay"
    records = open_run(run_dir).history().trials()
    assert len({r.hash for r in records}) == 13, "the budget covers the whole tiny space"
    complete = [r for r in records if r.state == COMPLETE]
    failed = [r for r in records if r.state != COMPLETE]
    assert sorted(r.hash for r in complete) == sorted(table.records), "exactly the table's cells score"
    for record in complete:
        stored = table.record(CellSpec.from_dict(record.cell).hash)
        assert record.curve == pytest.approx(stored.curve, abs=1e-12)
        assert record.value == pytest.approx(stored.accuracy, abs=1e-12)
        assert record.values["macs"] == stored.macs and record.values["params"] == stored.params
    assert len(failed) == 13 - TINY_CELLS
    for record in failed:
        assert f"{tiny_attnbench_table}: cells: no cell with hash {record.hash}" in record.reason
        assert "expected a cell of the table" in record.reason and "\n" not in record.reason
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    best = max(complete, key=lambda r: r.value)
    assert f"13 trials: {TINY_CELLS} complete" in out and f"{best.value:.4f}" in out


def test_a_missing_table_or_wrong_epochs_is_one_line_naming_file_and_field(tmp_path, tiny_attnbench_table,
                                                                          monkeypatch):
    def load(evaluator):
        experiment_from_data({"name": "replay", "space": "tiny", "evaluator": evaluator}, where="exp.yaml",
                             source="exp.yaml")

    with pytest.raises(ConfigError, match=r"^exp\.yaml: evaluator\.table: cannot replay it: .*nothing\.json\.gz: no "
                                          r"such AttnBench table file"):
        load({"kind": "simulated", "table": str(tmp_path / "nothing.json.gz")})
    with pytest.raises(ConfigError, match=r"^exp\.yaml: evaluator\.table: expected `attnbench` .* or an absolute"):
        load({"kind": "simulated", "table": "relative.json.gz"})
    monkeypatch.setattr(attnbench, "shipped_table_path", lambda: tmp_path / "not-built.json.gz")
    with pytest.raises(ConfigError, match=r"the AttnBench table is not built yet; build it with `python "
                                          r"benchmarks/attnbench_build.py build"):
        load({"kind": "simulated", "table": "attnbench"})
    epochs = load_table(tiny_attnbench_table).epochs
    with pytest.raises(ConfigError, match=rf"^exp\.yaml: evaluator\.epochs: table .* holds {epochs}-epoch curves; "
                                          rf"expected epochs: {epochs}, got {epochs + 1}"):
        load({"kind": "simulated", "table": str(tiny_attnbench_table), "epochs": epochs + 1})
    assert load_space("tiny").size() == 13


def test_evaluate_replays_a_table_cell_and_names_the_table_for_a_cell_it_lacks(tmp_path, capsys,
                                                                               tiny_attnbench_table):
    table = load_table(tiny_attnbench_table)
    path = write_experiment(tmp_path, tiny_attnbench_table)
    record = table.records[sorted(table.records)[0]]
    cell_file = tmp_path / "cell.yaml"
    cell_file.write_text(yaml.safe_dump(dict(record.cell)))
    assert main(["evaluate", str(cell_file), "--config", path]) == 0
    out = capsys.readouterr().out
    assert f"epoch {table.epochs}: simulated accuracy {record.accuracy:.4f}" in out and f"{record.macs:,.0f}" in out
    assert main(["evaluate", "non_local", "--config", path]) == 2
    err = capsys.readouterr().err
    assert f"{tiny_attnbench_table}: cells: no cell with hash {load_zoo('non_local').hash}" in err
    assert "Traceback" not in err
