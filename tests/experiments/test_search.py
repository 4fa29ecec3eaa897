"""End-to-end searches on a real Ray: locally, on a two-node cluster, with PostgreSQL storage, and the CLI around
them (status, export)."""
import subprocess
import sys
from pathlib import Path

import pytest

from attnas.experiments.cli import main
from attnas.experiments.config import load_experiment
from attnas.experiments.driver import run_search
from attnas.experiments.history import COMPLETE, PRUNED, RUNNING
from attnas.experiments.run_folder import create_run, open_run
from attnas.search_space import CellSpec, load_space
from tests.experiments.tiny import write_tiny

pytestmark = pytest.mark.slow


def prepared_run(tmp_path, storage=None, **changes):
    config = load_experiment(write_tiny(tmp_path, **changes))
    run = create_run(config.name, root=tmp_path / "runs", storage=storage)
    Path(run.experiment_file).write_text(Path(config.source).read_text())
    Path(run.space_file).write_text(Path(config.space_path).read_text())
    return config, run


def check_history(run, trials):
    records = run.history().trials()
    assert len(records) == trials
    assert all(r.state in (COMPLETE, PRUNED) for r in records), [(r.state, r.reason) for r in records]
    hashes = [r.hash for r in records]
    assert len(set(hashes)) == trials, "a cell was evaluated twice"
    space = load_space("small")
    for record in records:
        assert space.contains(CellSpec.from_dict(record.cell))
        assert record.hash == CellSpec.from_dict(record.cell).hash
        assert 0.0 <= record.value <= 1.0
        assert len(record.curve) == 2
        assert record.values["macs"] > 0 and record.values["params"] > 0 and record.values["latency_ms"] > 0
    return records


def test_local_search_records_every_trial(tmp_path, ray_local):
    config, run = prepared_run(tmp_path)
    summary = run_search(config, run, progress=False)
    assert (summary.complete, summary.failed, summary.running) == (4, 0, 0)
    records = check_history(run, 4)
    assert summary.best.value == max(r.value for r in records)


def test_search_on_a_two_node_cluster_lands_trials_on_both(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        config, run = prepared_run(tmp_path, budget={"trials": 6})
        run_search(config, run, address=cluster.address, progress=False)
        records = check_history(run, 6)
        nodes = {r.attrs["node"] for r in records}
        assert len(nodes) == 2, nodes
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


def test_search_with_postgresql_storage(tmp_path, ray_local, postgres_url):
    config, run = prepared_run(tmp_path, storage=postgres_url, budget={"trials": 2})
    run_search(config, run, progress=False)
    check_history(open_run(run.path), 2)


def test_cli_search_status_and_export(tmp_path, capsys, monkeypatch):
    config_path = write_tiny(tmp_path, budget={"trials": 2}, concurrency=1)
    assert main(["search", config_path, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best cell" in out and "attnas export" in out
    run_dir = str(tmp_path / "runs" / "tiny")
    assert main(["status", run_dir]) == 0
    assert "top 10 cells" in capsys.readouterr().out
    exported = tmp_path / "cell.py"
    assert main(["export", run_dir, "--best", "-o", str(exported)]) == 0
    source = exported.read_text()
    best = open_run(run_dir).history().best(1)[0]
    assert best.hash in source and "import attnas" not in source
    # the trained weights come along, load strictly into the exported module and match the pt2 program
    import importlib.util

    import torch

    weights = torch.load(tmp_path / "cell.pt", weights_only=True)
    module_spec = importlib.util.spec_from_file_location("exported_cell", exported)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    cell = module.AttentionCell()
    cell.load_state_dict(weights, strict=True)
    assert cell.norm.weight.abs().sum() > 0, "trained weights, not the identity initialisation"
    assert main(["export", run_dir, "--best", "-o", str(tmp_path / "cell.pt2")]) == 0
    program = torch.export.load(str(tmp_path / "cell.pt2")).module()
    x = torch.randn(2, module.CHANNELS, 4, 6, 6)
    torch.testing.assert_close(program(x), cell.eval()(x), rtol=1e-5, atol=1e-5)
    # the same run cannot be started twice by accident
    assert main(["search", config_path, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "already holds a search" in capsys.readouterr().err


def test_kill_9_then_resume_loses_nothing(tmp_path):
    """A real search process is killed mid-run; `attnas resume` finishes the budget without re-running any
    completed trial, and a trial that was running restarts from its checkpoint."""
    import os
    import signal
    import time

    # Ten short epochs per trial leave a wide window in which one trial is complete and the next is running
    # with a checkpoint, even on a slow CI machine; three trials leave one that never started for the resume.
    config_path = write_tiny(tmp_path, name="killed", budget={"trials": 3}, concurrency=1,
                             evaluator={**load_tiny_evaluator(), "epochs": 10,
                                        "data": {"train_size": 128, "validation_size": 64, "test_size": 32}})
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "attnas.experiments.cli", "search", config_path, "--runs-dir", str(runs),
               "--quiet"]
    log_path = tmp_path / "search.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=os.getcwd())
    history_file = runs / "killed" / "history.db"
    deadline = time.time() + 600
    before, seen, last_error = [], [], None
    try:
        while time.time() < deadline and process.poll() is None:
            time.sleep(0.2)
            if not history_file.exists():
                continue
            try:
                records = open_run(runs / "killed").history().trials()
            except Exception as error:  # the database may be mid-write; poll again
                last_error = error
                continue
            states = [(r.number, r.state, bool(r.attrs.get("checkpoint"))) for r in records]
            if not seen or seen[-1] != states:
                seen.append(states)
            running = [r for r in records if r.state == RUNNING and r.attrs.get("checkpoint")]
            if any(r.state == COMPLETE for r in records) and running:
                before = records
                break
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert before, (f"the search never had a complete trial and a checkpointed running one; states seen: {seen}; "
                    f"last read error: {last_error!r}; search output: {log_path.read_text()[-2000:]}")
    time.sleep(2)
    done_before = {r.number: (r.hash, r.value) for r in before if r.state == COMPLETE}
    interrupted = {r.number for r in before if r.state == RUNNING}

    resumed = subprocess.run([sys.executable, "-m", "attnas.experiments.cli", "resume", str(runs / "killed"),
                              "--quiet"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = open_run(runs / "killed").history().trials()
    assert len(after) == 3 and all(r.state in (COMPLETE, PRUNED) for r in after)
    for number, (cell_hash, value) in done_before.items():
        record = next(r for r in after if r.number == number)
        assert (record.hash, record.value) == (cell_hash, value)
    assert len({r.hash for r in after}) == 3, "a completed cell was run again"
    restarted = [r for r in after if r.number in interrupted and r.attrs.get("checkpoint")]
    assert restarted and all(r.attrs.get("resumed_from_epoch", 0) >= 1 for r in restarted)


def load_tiny_evaluator():
    from tests.experiments.tiny import TINY

    return dict(TINY["evaluator"])
