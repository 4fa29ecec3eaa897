"""The Ray Tune trainable: one trial scores one cell with the proxy evaluator, on whatever the trial was given (or
with a user's evaluator, evaluators/custom.py, or the simulated one, evaluators/simulated.py, by the same rules).

Each epoch but the last is reported to Tune with a checkpoint (so ASHA can stop weak cells, and a trial whose worker
dies resumes elsewhere from it), unless the trial's folder holds nothing to resume from. The last epoch is reported
once the evaluator has finished, together with the costs it measures at the end (latency, wall time), so that a
scheduler stopping the trial at its last epoch never cuts off those figures. A failed evaluation is reported as a
result with `failed` set and the reason; the trainable itself never raises for a bad cell.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def train_trial(config: dict) -> None:
    """Ray Tune function trainable: `config` holds the trial number, the cell as data, the evaluator settings and
    an optional checkpoint to resume from (a trial that was running when an earlier driver stopped)."""
    from ray import tune

    from attnas.evaluators.custom import is_custom
    from attnas.evaluators.simulated import is_simulated

    if is_custom(config["evaluator"]):
        return train_custom_trial(config)
    if is_simulated(config["evaluator"]):
        return train_simulated_trial(config)
    from attnas.evaluators.proxy import ProxyEvaluator
    from attnas.experiments.config import proxy_config
    from attnas.search_space import CellSpec

    entered = time.perf_counter()
    device, threads, node = _trial_resources()
    settings = proxy_config(config["evaluator"], where="trial config")
    settings = _replace(settings, device=device, threads=threads)
    work = _working_folder(config)

    epochs = settings.epochs
    held: dict[str, Any] = {}
    warm_start_s = _warm_start(ProxyEvaluator(settings))

    def report(epoch: int, metrics: dict) -> bool:
        payload = _tune_metrics(metrics, epoch=epoch, node=node)
        if metrics.get("feature_path"):  # which input path the trial took (a string), into its attributes
            payload["feature_path"] = metrics["feature_path"]
        if warm_start_s is not None:  # the one-time cost this trial paid, for the progress display and its ETA
            payload["warm_start_s"] = warm_start_s
        if epoch >= epochs:
            held.update(payload)  # reported below, with the costs measured at the end
            return False
        tune.report(payload, checkpoint=_checkpoint(work))
        return False

    try:
        result = ProxyEvaluator(settings).evaluate(CellSpec.from_dict(config["cell"]), report=report,
                                                   checkpoint_dir=work)
        if result.status == "failed":
            tune.report({"failed": 1, "failure": result.reason or "the evaluator failed", "epoch": result.epochs,
                         "node": node, "wall_time_s": result.wall_time})
            return
        final = {**held, **_tune_metrics({"top1": result.top1, "top5": result.top5, "loss": result.loss},
                                         epoch=result.epochs, node=node)}
        final.update({"macs": result.macs, "params": result.params, "wall_time_s": result.wall_time,
                      "latency_ms": None if result.latency is None else result.latency * 1000.0,
                      "resumed_from": result.resumed_from or 0,
                      "trainable_s": time.perf_counter() - entered, **skipped_videos(settings.data)})
        tune.report({k: v for k, v in final.items() if v is not None},
                    checkpoint=_checkpoint(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def skipped_videos(data) -> dict[str, list[str]]:
    """{"skipped_videos": ["split<TAB>video<TAB>reason", ...]} for the videos the trial's data skipped (the first
    MAX_SKIPPED_LISTED), {} if none: the driver records them with the trial, the CLI lists them in the run folder."""
    from attnas.evaluators.datasets import load_splits

    if data.video_root is None:
        return {}
    rows = [f"{split}\t{name}\t{reason}" for split, items in load_splits(data).skipped.items()
            for name, reason in items]
    return {"skipped_videos": rows[:MAX_SKIPPED_LISTED]} if rows else {}


MAX_SKIPPED_LISTED = 10_000


def _warm_start(evaluator) -> float | None:
    """Seconds spent getting the pretrained backbone (trained on first use per machine, then read from the cache);
    None without pretraining. A failure is left to `evaluate`, which reports it as the trial's failure."""
    if not evaluator.config.pretrain_epochs:
        return None
    started = time.perf_counter()
    try:
        evaluator.pretrained_backbone()
    except Exception:  # noqa: BLE001 - evaluate() meets the same error and fails the trial with its reason
        return None
    return time.perf_counter() - started


def train_custom_trial(config: dict) -> None:
    """The trainable for a user's evaluator (`evaluator: {custom: module:attr}`, evaluators/custom.py): each of its
    epoch reports goes to Tune with the checkpoint folder, the last one together with its final metrics."""
    from ray import tune

    from attnas.evaluators.custom import CustomEvaluatorConfig, TrialContext, run_custom
    from attnas.experiments.schema import parse
    from attnas.search_space import CellSpec

    entered = time.perf_counter()
    settings = parse(CustomEvaluatorConfig, config["evaluator"], where="trial config", path="evaluator")
    device, threads, node = _trial_resources()
    work = _working_folder(config)

    def report(epoch: int, metrics: dict) -> bool:
        if epoch < settings.epochs:
            tune.report({**metrics, "epoch": epoch, "node": node},
                        checkpoint=_checkpoint(work))
        return False

    context = TrialContext(settings=dict(settings.settings), epochs=settings.epochs, seed=settings.seed,
                           device=device, threads=threads, checkpoint_dir=work, resumed=any(work.iterdir()),
                           reporter=report)
    try:
        try:
            final = run_custom(settings, CellSpec.from_dict(config["cell"]), context)
        except Exception as error:  # the user's code: any exception fails this trial, not the search
            tune.report({"failed": 1, "failure": _failure(error), "epoch": int(context.reported.get("epoch", 0)),
                         "node": node})
            return
        tune.report({**final, "epoch": int(context.reported.get("epoch", settings.epochs)), "node": node,
                     "wall_time_s": time.perf_counter() - entered, "trainable_s": time.perf_counter() - entered},
                    checkpoint=_checkpoint(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train_simulated_trial(config: dict) -> None:
    """The trainable for the simulated evaluator (`evaluator: {kind: simulated}`, evaluators/simulated.py): each
    epoch but the last goes to Tune with the checkpoint folder, the last together with the final metrics. It never
    imports torch unless the cell's costs are not cached yet, so hundreds of these fit on one machine."""
    from ray import tune

    from attnas.evaluators.simulated import SimulatedEvaluatorConfig, run_simulated
    from attnas.experiments.schema import parse
    from attnas.search_space import CellSpec

    entered = time.perf_counter()
    settings = parse(SimulatedEvaluatorConfig, config["evaluator"], where="trial config", path="evaluator")
    node = _trial_node()
    work = _working_folder(config)

    def report(epoch: int, metrics: dict) -> None:
        tune.report({**metrics, "epoch": epoch, "node": node}, checkpoint=_checkpoint(work))

    try:
        try:
            final = run_simulated(settings, CellSpec.from_dict(config["cell"]), work, report)
        except Exception as error:  # noqa: BLE001 - e.g. a cell the cost model cannot build: this trial fails
            tune.report({"failed": 1, "failure": _failure(error), "node": node})
            return
        elapsed = time.perf_counter() - entered
        tune.report({**final, "epoch": settings.epochs, "node": node, "wall_time_s": elapsed, "trainable_s": elapsed},
                    checkpoint=_checkpoint(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _trial_resources() -> tuple[str, int, str]:
    """The trial's device (a GPU when Ray gave it one), its CPU threads and the node it runs on."""
    import ray
    import torch
    from ray import tune

    resources = tune.get_context().get_trial_resources().required_resources
    gpus = resources.get("GPU", 0)
    device = "cuda" if gpus and torch.cuda.is_available() and ray.get_gpu_ids() else "cpu"
    threads = max(1, int(resources.get("CPU", 1)))
    return device, threads, _trial_node()


def _trial_node() -> str:
    """The node the trial runs on, as the history records it (no torch: the simulated trial asks this alone)."""
    import ray

    return f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:8]}"


def _working_folder(config: dict) -> Path:
    """A fresh folder for the trial's checkpoints, holding the last checkpoint when the trial is resumed."""
    from ray import tune

    work = Path(tempfile.mkdtemp(prefix="attnas-trial-"))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        checkpoint.to_directory(str(work))
    elif config.get("resume_from") and Path(config["resume_from"]).is_dir():
        shutil.copytree(config["resume_from"], work, dirs_exist_ok=True)
    return work


def _failure(error: BaseException) -> str:
    """A failed trial's reason: the exception's type and the first line of its message."""
    reason = (str(error).splitlines() or [type(error).__name__])[0][:300]
    return f"{type(error).__name__}: {reason}"


def _checkpoint(work: Path):
    """The trial's working folder as a Tune checkpoint, or None while it holds nothing (a custom evaluator that
    keeps no files): Ray would copy an empty folder to the run's storage, and the driver record it, every epoch."""
    from ray import tune

    return tune.Checkpoint.from_directory(str(work)) if any(work.iterdir()) else None


def _tune_metrics(metrics: dict, *, epoch: int, node: str) -> dict:
    """The evaluator's epoch metrics under the names the history and scheduler use."""
    renamed = {"top1": "accuracy"}
    payload = {renamed.get(k, k): v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
    payload.update(epoch=epoch, node=node)
    return payload


def _replace(settings, **changes):
    from dataclasses import replace

    return replace(settings, **changes)
