"""A search on a multi-node Ray cluster (`ray.cluster_utils.Cluster`: several raylets on this machine, with
logical CPUs and GPUs) that loses nodes mid-search, run as a user runs it (`attnas.search`, the CLI):

- a worker node dies: Ray restarts its trials from their checkpoints on the other nodes, the search spends its whole
  budget, and every trial's record is complete (its curve continuous, its restart recorded);
- the cluster loses every node that can run a trial (its only GPU node, or all its worker nodes): the search stops
  with one line naming the field, every trial closed, and `attnas resume` goes on once such a node is back.

The trials run a custom evaluator (this module's `score`) that sleeps per epoch, reports deterministic accuracies
and resumes from the epoch its checkpoint folder holds."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

import attnas
from attnas.experiments.cli import main
from attnas.experiments.history import COMPLETE, FAILED, RUNNING, counted

EPOCHS = 4


def accuracy(cell_hash: str, epoch: int) -> float:
    return round((int(cell_hash[-6:], 16) % 1000) / 1000.0 * epoch / EPOCHS, 6)


def score(cell, context):
    """The trials' evaluator: one `sleep` per epoch; each epoch also leaves a line in the `trace` folder (node,
    device, whether the trial went on from a checkpoint) for the test to read."""
    import ray

    marker = context.checkpoint_dir / "epoch.txt"
    start = int(marker.read_text()) if marker.exists() else 0
    trace = Path(context.settings["trace"]) / f"{cell.hash}.jsonl"
    for epoch in range(start + 1, context.epochs + 1):
        time.sleep(context.settings["sleep"])
        marker.write_text(str(epoch))
        with trace.open("a") as lines:
            lines.write(json.dumps({"epoch": epoch, "node": ray.get_runtime_context().get_node_id(),
                                    "device": context.device, "resumed": context.resumed}) + "\n")
        context.report(epoch, accuracy=accuracy(cell.hash, epoch))
    return {}


def experiment(trace: Path, **changes) -> dict:
    return {"name": "cluster", "space": "small", "controller": {"name": "random"},
            "evaluator": {"custom": "tests.experiments.test_cluster:score", "epochs": EPOCHS,
                          "settings": {"sleep": 1.0, "trace": str(trace)}},
            "budget": {"trials": 4}, "concurrency": 2, "retries": 2, **changes}


def epochs_traced(trace: Path, cell_hash: str) -> list[dict]:
    path = trace / f"{cell_hash}.jsonl"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]  # a line being written: not yet


@pytest.fixture(scope="module")
def head():
    """A Ray cluster of raylets on this machine, its head node running no trial (started once: it is slow)."""
    from ray.cluster_utils import Cluster

    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        yield made
    finally:
        made.shutdown()


@pytest.fixture
def cluster(head):
    """The cluster with no worker node: each test adds its own, and they go when it ends."""
    import ray

    yield head
    ray.shutdown()
    for node in list(head.worker_nodes):
        head.remove_node(node)


def kill_nodes_when(cluster, run_path: Path, trace: Path, nodes: list, *, epochs_recorded: int = 2,
                    only_its_node: bool = False) -> dict:
    """In the background: once the history holds `epochs_recorded` epochs of a running trial (so Tune has its
    checkpoint), remove `nodes` (`only_its_node`: the one of them that trial runs on). The returned dict gets the
    trial's cell hash, the node ids removed, and the watching thread."""
    killed: dict = {}

    def watch() -> None:
        try:
            kill()
        except Exception as error:  # said by the test, not lost in this thread
            killed["error"] = repr(error)

    def kill() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(trace.iterdir()):  # a trial runs: the search has made its history (opening it sooner races)
                running = [t for t in attnas.load_run(run_path).trials
                           if t.state == RUNNING and len(t.curve) >= epochs_recorded]
                for trial in running:
                    traced = epochs_traced(trace, trial.hash)
                    on = [n for n in nodes if n.node_id == traced[-1]["node"]] if only_its_node else nodes
                    for node in on:
                        cluster.remove_node(node)
                    killed.update(hash=trial.hash, nodes=[n.node_id for n in on])
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    killed["thread"] = thread
    return killed


@pytest.mark.slow
def test_a_worker_node_lost_mid_search_has_its_trials_restarted_from_their_checkpoints(tmp_path, cluster):
    workers = [cluster.add_node(num_cpus=1) for _ in range(3)]
    cluster.wait_for_nodes()
    trace = tmp_path / "trace"
    trace.mkdir()
    killed = kill_nodes_when(cluster, tmp_path / "runs" / "cluster", trace, workers, only_its_node=True)

    run = attnas.search(experiment(trace), runs_dir=tmp_path / "runs", address=cluster.address)
    killed["thread"].join()

    assert "error" not in killed, killed
    assert len(killed["nodes"]) == 1, "the test removed the one node the trial ran on"
    trials = run.trials
    assert [t.state for t in trials] == [COMPLETE] * 4  # the budget, spent; nothing lost, nothing left running
    for trial in trials:
        assert trial.curve == [accuracy(trial.hash, e) for e in range(1, EPOCHS + 1)]
        assert trial.value == accuracy(trial.hash, EPOCHS)
    (moved,) = [t for t in trials if t.hash == killed["hash"]]
    (restart,) = moved.attrs["restarts"]
    lost_node = killed["nodes"][0]
    assert restart["node"].endswith(lost_node[:8]) and restart["epoch"] >= 2
    assert "node" in restart["reason"]  # Ray's own words: the actor died because its node died
    assert not moved.attrs["node"].endswith(lost_node[:8])  # it finished elsewhere
    resumed_from = moved.attrs["resumed_from_epoch"]
    assert 2 <= resumed_from <= restart["epoch"]  # from its checkpoint, not from scratch
    traced = epochs_traced(trace, moved.hash)
    after = [line for line in traced if line["node"] != lost_node]
    assert [line["epoch"] for line in after] == list(range(resumed_from + 1, EPOCHS + 1))
    assert all(line["resumed"] for line in after)
    for trial in trials:
        if trial is not moved:
            assert "restarts" not in trial.attrs and trial.attrs["resumed_from_epoch"] == 0


def search_until_nodes_lost(cluster, tmp_path: Path, capsys, doomed: list, resources: dict) -> tuple:
    """`attnas search` on `cluster` whose `doomed` nodes are removed once a trial has recorded two epochs: checks
    that it stops with one line (exit 2) and leaves no trial running; the run folder, the trial that was
    interrupted, the trace folder and that line."""
    cluster.wait_for_nodes()
    trace = tmp_path / "trace"
    trace.mkdir()
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(experiment(trace, resources={**resources, "wait_for_nodes": 3},
                                              budget={"trials": 3})))
    run_path = tmp_path / "runs" / "cluster"
    killed = kill_nodes_when(cluster, run_path, trace, doomed)

    code = main(["search", str(path), "--runs-dir", str(tmp_path / "runs"), "--address", cluster.address])
    killed["thread"].join()
    assert "error" not in killed and killed["nodes"], killed

    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    trials = attnas.load_run(run_path).trials
    assert trials and not [t for t in trials if t.state == RUNNING]
    (interrupted,) = [t for t in trials if t.hash == killed["hash"]]
    assert interrupted.state == FAILED and interrupted.attrs["interrupted"]  # so that a resume trains it again
    assert len(interrupted.curve) >= 2 and interrupted.attrs["checkpoint"]
    return run_path, interrupted, trace, err.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_cluster_that_loses_its_gpu_node_stops_and_resumes_once_one_is_back(tmp_path, cluster, capsys):
    gpu_node = cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.add_node(num_cpus=2)  # stays, but cannot run a trial that asks for a GPU
    run_path, interrupted, trace, line = search_until_nodes_lost(cluster, tmp_path, capsys, [gpu_node],
                                                                 {"cpus": 1, "gpus": 1})
    assert line.startswith("attnas: error: search 'cluster' stopped: resources.gpus: a trial asks for 1 CPUs and "
                           "1 GPUs, but no node of the Ray cluster offers that (the largest of its 2 live nodes "
                           "has 2 CPUs and 0 GPUs), and none joined within 3s; `attnas resume` continues")
    done_before = [t.number for t in attnas.load_run(run_path).trials if counted(t)]

    cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.wait_for_nodes()
    assert main(["resume", str(run_path), "--address", cluster.address]) == 0

    trials = attnas.load_run(run_path).trials
    assert not [t for t in trials if t.state == RUNNING]
    finished = [t for t in trials if counted(t)]
    assert len(finished) == 3 and {t.state for t in finished} == {COMPLETE}
    assert set(done_before) <= {t.number for t in finished}
    (rerun,) = [t for t in trials if t.attrs.get("rerun_of") == interrupted.number]
    assert rerun.curve == [accuracy(rerun.hash, e) for e in range(1, EPOCHS + 1)]
    assert rerun.attrs["resumed_from_epoch"] >= len(interrupted.curve)  # from the interrupted trial's checkpoint
    traced = epochs_traced(trace, rerun.hash)
    assert [line["epoch"] for line in traced if line["resumed"]] == list(
        range(rerun.attrs["resumed_from_epoch"] + 1, EPOCHS + 1))
    # Ray gave each trial a (logical) GPU; with no CUDA here the trainable ran it on the CPU
    assert {line["device"] for line in traced} == {"cpu"}


@pytest.mark.slow
def test_a_cluster_that_loses_all_its_worker_nodes_stops_with_one_line(tmp_path, cluster, capsys):
    workers = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)]
    _, _, _, line = search_until_nodes_lost(cluster, tmp_path, capsys, workers, {"cpus": 1})
    assert line.startswith("attnas: error: search 'cluster' stopped: resources.cpus: a trial asks for 1 CPUs and "
                           "0 GPUs, but no node of the Ray cluster offers that (the largest of its 1 live nodes "
                           "has 0 CPUs and 0 GPUs), and none joined within 3s")


@pytest.mark.slow
def test_a_search_without_address_starts_its_own_ray_beside_a_running_cluster(tmp_path, cluster, monkeypatch):
    """A user with a cluster started on this machine (by `ray start` or, here, `Cluster`) who searches without
    `--address` gets a Ray of their own, as the docs say: Ray's `init()` alone would join that cluster (whose only
    node, the head, runs no trial) and refuse the CPU count."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    trace = tmp_path / "trace"
    trace.mkdir()
    config = tmp_path / "local.yaml"
    evaluator = {"custom": "tests.experiments.test_cluster:score", "epochs": 1,
                 "settings": {"sleep": 0, "trace": str(trace)}}
    config.write_text(yaml.safe_dump(experiment(trace, budget={"trials": 2}, concurrency=1, evaluator=evaluator)))

    assert main(["search", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    trials = attnas.load_run(tmp_path / "runs" / "cluster").trials
    assert [t.state for t in trials] == [COMPLETE] * 2
    nodes = {line["node"] for t in trials for line in epochs_traced(trace, t.hash)}
    assert len(nodes) == 1 and cluster.head_node.node_id not in nodes  # one node: not the cluster's
