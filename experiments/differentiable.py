"""`controller: {name: differentiable, ...}`: a differentiable (first-order DARTS) search instead of black-box trials,
run by the same CLI and recorded in the same history (evaluators/differentiable.py has the search itself).

Where it runs: the search is one training job, so it is one Ray task with the experiment's per-trial resources
(`resources.cpus`, `resources.gpus`): on a cluster it lands on a GPU worker, while the driver (which may have no GPU)
stays light and remains the only writer of the history. The task is a streaming generator: it yields after every
search epoch, and the driver records that epoch at once. The derived cell is then re-trained and scored
by a second task with the same resources, exactly as a normal trial (the experiment's evaluator).

What the history holds (controller "differentiable" on every trial):
- one trial per search epoch, state PRUNED (it was never trained as a proxy, so it must not compete with scored
  trials for "best"), user attributes `phase: "search"`, `search_epoch`, `architecture_weights` (below) and, in
  `values`, `derived_top1` (validation top-1 of the derived cell with the supernet's weights), `supernet_top1`,
  `supernet_loss` and `train_loss`;
- one final trial, `phase: "retrain"`, COMPLETE with the usual values (accuracy, macs, params, latency, wall time) and
  its learning curve as intermediate values, carrying the final `architecture_weights`;
- the study's user attribute `architecture_weights`: {"epoch": k, "cells": [...]} of the last epoch, and the plotly
  figure "attnas-architecture-weights" (optuna-dashboard's saved graph objects) showing it.

`architecture_weights` is a list with one record per supernet cell (one per placement), each
`cells.supernet.SupernetCell.architecture_weights()`: {"format": 1, "width": w, "candidates": [label, ...],
"depth": [p(1 node), ..., p(max_nodes)], "slots": [{"ops": [p per candidate], "sources": ["input", "slot1", ...],
"edges": [[p per source, first port], [p per source, second port]]}, ...]}.

Budget: `budget.time` stops the search after the epoch that passes it (the derived cell is still re-trained);
`budget.trials` does not apply. `attnas resume` of an unfinished run starts the search again from its first epoch
(it is deterministic for the seed), closing trials left running as failed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace

from attnas.experiments.config import differentiable_settings
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History
from attnas.search_space import CellSpec, SearchSpace
from attnas.search_space.errors import AttnasError

NAME = "differentiable"
FIGURE_ID = "attnas-architecture-weights"
WEIGHTS_ATTR = "architecture_weights"


def run_differentiable(config, run, *, address: str | None = None, progress: bool | None = None):
    """Run (or restart) the differentiable search of `config` in `run`; returns the driver's `SearchSummary`."""
    import ray

    from attnas.experiments.config import proxy_config
    from attnas.experiments.dashboard import DashboardPublisher
    from attnas.experiments.ray_session import init_ray, quiet_ray
    from attnas.experiments.summary import summarize

    started_at = time.time()
    history = run.history(create=True)
    space = SearchSpace.from_yaml(str(run.space_file))
    settings = differentiable_settings(config.controller_settings, space, where=config.source)
    evaluator = proxy_config(config.evaluator, where=config.source)
    records = history.trials()
    if any(r.attrs.get("phase") == "retrain" and r.state == COMPLETE for r in records):
        return summarize(run, records, started_at)
    for record in records:
        if record.state == RUNNING:
            history.finish(record.number, state=FAILED,
                           reason="interrupted; the differentiable search restarted from its first epoch")
    deadline = started_at + config.budget.seconds if config.budget.seconds else None
    say = _printer(progress)

    quiet_ray()
    owns_ray = not ray.is_initialized()
    init_ray(address)
    publisher = DashboardPublisher.for_run(run, history)
    resources = {"num_cpus": config.resources.cpus, "num_gpus": config.resources.gpus}
    try:
        search = ray.remote(_search_task).options(**resources).remote(
            run.space_file.read_text(), config.evaluator,
            settings.to_dict(), config.resources.cpus)
        last = None
        for ref in search:
            epoch = ray.get(ref)
            last = epoch
            number = _record_epoch(history, space, epoch)
            publisher.trial_started(number)
            history.finish(number, state=PRUNED, values=epoch["metrics"])
            publisher.trial_finished(number)
            history.set_metadata(**{WEIGHTS_ATTR: {"epoch": epoch["epoch"], "cells": epoch["weights"]}})
            _save_figure(history, epoch)
            metrics = epoch["metrics"]
            say(f"search epoch {epoch['epoch']}: derived cell {CellSpec.from_dict(epoch['cell']).hash} "
                f"(inherited top-1 {metrics['derived_top1']:.4f}, supernet top-1 {metrics['supernet_top1']:.4f}, "
                f"{metrics['seconds']:.0f} s)")
            if deadline is not None and time.time() >= deadline:
                say("budget.time reached: the search stops after this epoch")
                ray.cancel(search, force=True)
                break
        if last is None:
            raise AttnasError("the differentiable search ended without finishing an epoch")
        if settings.retrain:
            _retrain(history, space, last, config, evaluator, resources, publisher, say)
    finally:
        publisher.finish()
        if owns_ray:
            ray.shutdown()
    return summarize(run, history.trials(), started_at)


def _record_epoch(history: History, space: SearchSpace, epoch: dict, *, phase: str = "search") -> int:
    cell = CellSpec.from_dict(epoch["cell"])
    extra = {"search_epoch": epoch["epoch"]} if phase == "search" else {}
    return history.start(cell=cell.to_dict(), cell_hash=cell.hash, controller=NAME,
                         encoding=[int(v) for v in space.encode_vector(cell)], encoding_names=space.vector_names(),
                         cardinalities=space.vector_cardinalities(), choices=space.vector_choices(), phase=phase,
                         **{WEIGHTS_ATTR: epoch["weights"]}, started_at=time.time(), **extra)


def _retrain(history, space, last, config, evaluator, resources, publisher, say) -> None:
    import ray

    number = _record_epoch(history, space, last, phase="retrain")
    publisher.trial_started(number)
    say(f"re-training the derived cell {CellSpec.from_dict(last['cell']).hash} as a normal trial (trial {number})")
    result = ray.get(ray.remote(_retrain_task).options(**resources).remote(last["cell"], config.evaluator,
                                                                           config.resources.cpus))
    for metrics in result["curve"]:
        history.report(number, int(metrics["epoch"]), metrics.get("top1"))
    if result["status"] == "failed":
        history.finish(number, state=FAILED, reason=result.get("reason") or "the evaluator failed")
    else:
        values = {"accuracy": result["top1"], "top5": result["top5"], "loss": result["loss"], "macs": result["macs"],
                  "params": result["params"], "wall_time_s": result["wall_time"],
                  "latency_ms": None if result["latency"] is None else result["latency"] * 1000.0}
        state = COMPLETE if result["epochs"] >= evaluator.epochs else PRUNED
        history.finish(number, state=state, values={k: v for k, v in values.items() if v is not None},
                       epochs_done=result["epochs"], node=result.get("node"), finished_at=time.time())
        say(f"derived cell re-trained: accuracy {result['top1']:.4f}")
    publisher.trial_finished(number)


def _device_and_threads(cpus: float) -> tuple[str, int]:
    """What a Ray task was given: a GPU when it holds one, and its CPUs as torch threads."""
    import ray
    import torch

    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    return device, max(1, int(cpus))


def _search_task(space_yaml: str, evaluator: dict, settings: dict, cpus: float):
    """Ray task (a generator): the search, one plain-data `SearchEpoch` per epoch."""
    from attnas.evaluators.differentiable import DifferentiableConfig, DifferentiableSearch
    from attnas.experiments.config import proxy_config

    device, threads = _device_and_threads(cpus)
    proxy = replace(proxy_config(evaluator, where="differentiable search"), device=device, threads=threads)
    if isinstance(settings.get("arch_betas"), list):
        settings = {**settings, "arch_betas": tuple(settings["arch_betas"])}
    search = DifferentiableSearch(proxy, DifferentiableConfig(**settings), SearchSpace.from_yaml(space_yaml))
    for epoch in search.epochs():
        yield epoch.to_dict()


def _retrain_task(cell: dict, evaluator: dict, cpus: float) -> dict:
    """Ray task: the derived cell trained as a normal trial and scored by the experiment's evaluator."""
    import ray

    from attnas.evaluators.proxy import ProxyEvaluator
    from attnas.experiments.config import proxy_config

    device, threads = _device_and_threads(cpus)
    proxy = replace(proxy_config(evaluator, where="differentiable search"), device=device, threads=threads)
    result = ProxyEvaluator(proxy).evaluate(CellSpec.from_dict(cell)).to_dict()
    result["node"] = f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:8]}"
    return result


def architecture_figure(epoch: dict):
    """A plotly heatmap per supernet cell: candidate (rows) by slot (columns) op weights, with the depth weights."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    records = epoch["weights"]
    figure = make_subplots(rows=1, cols=2 * len(records), column_widths=[0.8, 0.2] * len(records),
                           subplot_titles=[t for i in range(len(records))
                                           for t in (f"op weights, cell {i + 1}", "nodes used")])
    for i, record in enumerate(records):
        slots = [f"slot {s + 1}" for s in range(len(record["slots"]))]
        z = [[slot["ops"][k] for slot in record["slots"]] for k in range(len(record["candidates"]))]
        figure.add_trace(go.Heatmap(z=z, x=slots, y=record["candidates"], zmin=0, zmax=1, colorscale="Blues",
                                    showscale=i == 0), row=1, col=2 * i + 1)
        figure.add_trace(go.Bar(x=[str(n + 1) for n in range(len(record["depth"]))], y=record["depth"],
                                showlegend=False), row=1, col=2 * i + 2)
    figure.update_layout(title=f"Architecture weights after search epoch {epoch['epoch']}",
                         template="plotly_white", height=max(430, 22 * len(records[0]["candidates"]) + 120))
    return figure


def _save_figure(history: History, epoch: dict) -> None:
    try:
        from optuna_dashboard import save_plotly_graph_object

        save_plotly_graph_object(history.study, architecture_figure(epoch), graph_object_id=FIGURE_ID)
    except Exception as error:  # noqa: BLE001 - the dashboard is an addition to the search, never a reason for it to stop
        print(f"attnas: could not save the architecture-weights figure: {error}", file=sys.stderr)


def _printer(progress: bool | None):
    enabled = sys.stdout.isatty() if progress is None else progress

    def say(text: str) -> None:
        if enabled:
            print(text, flush=True)

    return say
