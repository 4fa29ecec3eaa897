"""NodeWatch (experiments/node_watch.py) on a made-up cluster and clock: when it reads the cluster, how long it
waits for a node able to run a trial, and what it says (the end-to-end runs: tests/experiments/test_cluster.py)."""
from __future__ import annotations

from attnas.experiments.config import Resources
from attnas.experiments.node_watch import NodeWatch

GPU_NODE = {"CPU": 8.0, "GPU": 1.0}
CPU_NODE = {"CPU": 4.0}
HEAD = {"CPU": 0.0}


class Cluster:
    """The nodes a test sets, and how often the watch read them."""

    def __init__(self, *nodes):
        self.nodes = list(nodes)
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return list(self.nodes)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def watch(cluster: Cluster, clock: Clock, **resources) -> NodeWatch:
    return NodeWatch(Resources(**resources), wait_s=10, poll_s=2, nodes=cluster, clock=clock)


def test_the_cluster_is_read_at_most_once_per_poll_interval():
    cluster, clock = Cluster(HEAD, GPU_NODE), Clock()
    stopper = watch(cluster, clock, gpus=1)
    for _ in range(50):  # Tune asks at every step of its loop
        assert stopper.stop_all() is False
        clock.now += 0.1
    assert cluster.reads == 3  # at 0, 2 and 4 s
    assert stopper("trial", {"epoch": 1}) is False and stopper.lost is None


def test_a_lost_gpu_node_stops_the_search_after_the_wait_unless_one_joins(capsys):
    cluster, clock = Cluster(HEAD, GPU_NODE, CPU_NODE), Clock()
    stopper = watch(cluster, clock, cpus=1, gpus=1)
    assert stopper.stop_all() is False
    cluster.nodes.remove(GPU_NODE)
    clock.now += 2
    assert stopper.stop_all() is False
    assert capsys.readouterr().err == ("attnas: resources.gpus: a trial asks for 1 CPUs and 1 GPUs, but no node of "
                                       "the Ray cluster offers that (the largest of its 2 live nodes has 4 CPUs and "
                                       "0 GPUs); the search waits up to 10s for such a node to join\n")
    clock.now += 8
    cluster.nodes.append(GPU_NODE)  # back in time: the wait starts again the next time it goes
    assert stopper.stop_all() is False
    cluster.nodes.remove(GPU_NODE)
    clock.now += 2
    assert stopper.stop_all() is False
    clock.now += 9.9
    assert stopper.stop_all() is False
    clock.now += 1.9  # read again only one poll interval later
    assert stopper.stop_all() is False
    clock.now += 0.1
    assert stopper.stop_all() is True
    assert stopper.lost == ("resources.gpus: a trial asks for 1 CPUs and 1 GPUs, but no node of the Ray cluster "
                            "offers that (the largest of its 2 live nodes has 4 CPUs and 0 GPUs), and none joined "
                            "within 10s; `attnas resume` continues from the trials' checkpoints once such a node "
                            "has joined")
    cluster.nodes.append(GPU_NODE)  # too late: the Tuner is already stopping every trial
    assert stopper.stop_all() is True


def test_losing_every_worker_node_names_resources_cpus():
    cluster, clock = Cluster(HEAD), Clock()
    stopper = watch(cluster, clock)
    stopper.stop_all()
    clock.now += 10
    assert stopper.stop_all() is True
    assert stopper.lost.startswith("resources.cpus: a trial asks for 1 CPUs and 0 GPUs, but no node of the Ray "
                                   "cluster offers that (the largest of its 1 live nodes has 0 CPUs and 0 GPUs)")


def test_the_wait_is_an_experiment_field():
    import pytest

    from attnas.experiments.config import experiment_from_data
    from attnas.search_space.schema import ConfigError

    def resources(**fields):
        return experiment_from_data({"name": "x", "space": "small", "resources": fields}).resources

    assert resources().wait_for_nodes_s == 60
    assert resources(wait_for_nodes="90s").wait_for_nodes_s == 90
    assert resources(wait_for_nodes=None).wait_for_nodes_s is None  # waits for ever, as Ray would
    with pytest.raises(ConfigError, match=r"^<experiment>: resources.wait_for_nodes: expected a positive duration"):
        resources(wait_for_nodes="soon")
