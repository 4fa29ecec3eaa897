"""Stopping a search whose Ray cluster has lost every node that could run a trial (its only GPU nodes, or all its
workers): Ray itself would keep the trials pending forever, in silence. How long to wait for such a node to (re)join
is the experiment's `resources.wait_for_nodes`."""
from __future__ import annotations

import sys
import time
from typing import Callable

from ray.tune import Stopper

from attnas.experiments.config import Resources
from attnas.experiments.ray_session import cluster_nodes, resource_shortfall


class NodeWatch(Stopper):
    """Stops a search whose cluster has lost every node that could run a trial (Ray would keep its trials pending
    forever, in silence), once none has come back for `wait_s`; `lost` then says why in one line.

    A Tune `Stopper`: Tune asks `stop_all` at every step of its loop, so the cluster is read at most once every
    `poll_s`, off the trials' own path."""

    def __init__(self, resources: Resources, *, wait_s: float, poll_s: float = 2.0,
                 nodes: Callable[[], list[dict[str, float]]] = cluster_nodes,
                 clock: Callable[[], float] = time.monotonic):
        self.resources = resources
        self.wait_s = wait_s
        self.poll_s = min(poll_s, wait_s)
        self.nodes = nodes
        self.clock = clock
        self.lost: str | None = None
        self._unable_since: float | None = None
        self._polled_at: float | None = None

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        if self.lost is not None:
            return True
        now = self.clock()
        if self._polled_at is not None and now - self._polled_at < self.poll_s:
            return False
        self._polled_at = now
        shortfall = resource_shortfall(self.resources, self.nodes())
        if shortfall is None:
            self._unable_since = None
            return False
        if self._unable_since is None:
            self._unable_since = now
            print(f"attnas: {shortfall}; the search waits up to {self.wait_s:g}s for such a node to join",
                  file=sys.stderr, flush=True)
        if now - self._unable_since >= self.wait_s:
            self.lost = (f"{shortfall}, and none joined within {self.wait_s:g}s; `attnas resume` continues from the "
                         "trials' checkpoints once such a node has joined")
        return self.lost is not None
