"""`ProxyEvaluator`: the trial that scores one cell, by training the proxy backbone with the cell inserted.

Call order of one trial, `evaluate(spec, report=..., checkpoint_dir=...)`:
1. resources: pick the device (a GPU when `device` allows and one is visible, else CPU), set torch threads,
   switch torch to deterministic algorithms for the duration of the trial;
2. data: the config's splits, from the machine's cache (built by the first trial that needs them);
3. model: with `pretrain_epochs` > 0, the backbone alone pretrained once per machine (evaluators.pretrained; the
   first trial on a machine trains it); `torch.manual_seed(seed)`, the backbone (loaded with those weights), the
   cell inserted at every placement (none for `spec=None` or "none"), and with `freeze_front` the layers up to the
   first placement fixed; parameters and multiply-adds are counted on one clip. With `repeats` = k, k models from
   seeds seed, seed + 1, ... are trained side by side, and every metric below is their mean;
4. inputs: with the front frozen and no augmentation, the front's output for every clip, computed once per machine
   (evaluators.features); the model then runs from there. `feature_path` says which path the trial took and why;
5. resume: if `checkpoint_dir` holds a checkpoint of this same trial (evaluators.checkpoint), model, optimiser,
   schedule, RNG state and the curve so far are restored and training continues at the next epoch;
6. each epoch: train (data order a pure function of seed and epoch), score the validation split (a fixed subset
   before the last epoch, `validation_subset`), checkpoint, then `report(epoch, metrics)`; a truthy return value
   stops the trial (status "stopped", e.g. ASHA);
7. end: latency of one forward pass, test-split scores if asked for, an `EvaluationResult`.
A non-finite loss ends the trial as "failed" with the reason, as does any exception: evaluate never raises.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from attnas.evaluators.checkpoint import (CheckpointError, checkpoint_path, load_checkpoint, model_weights,
                                          replica_states, save_checkpoint, trial_identity)
from attnas.evaluators.config import ProxyConfig
from attnas.evaluators.datasets import Splits, load_splits
from attnas.evaluators.features import TrialInputs, batch_tensors, trial_inputs
from attnas.evaluators.pretrained import freeze_front, pretrained_backbone, train_mode
from attnas.search_space import AttnasError, CellSpec, load_zoo

ReportFn = Callable[[int, dict[str, Any]], Any]


@dataclass
class EvaluationResult:
    """The outcome of one trial. `top1` (validation) is the reward; `status` is ok, stopped or failed (`reason`).

    Costs: `params`, `macs` (multiply-adds of one clip), `latency` (median seconds of one forward pass of a batch of
    `latency_batch` clips on the trial's device), `wall_time` (seconds of this call), `cpu_time` (CPU seconds of
    this process during the call: on a loaded machine, the single-thread cost wall time would be without
    contention) and `times` (wall seconds spent in data, pretrain, build, complexity, train, validate, checkpoint,
    test, latency). `curve` has one dict of metrics per epoch.
    """

    status: str
    top1: float | None = None
    top5: float | None = None
    loss: float | None = None
    test_top1: float | None = None
    test_top5: float | None = None
    test_loss: float | None = None
    params: int | None = None
    macs: int | None = None
    latency: float | None = None
    wall_time: float = 0.0
    cpu_time: float = 0.0
    epochs: int = 0
    curve: list[dict[str, Any]] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    traceback: str | None = None
    spec_hash: str | None = None
    seed: int = 0
    device: str = "cpu"
    resumed_from: int | None = None
    feature_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def reward(self) -> float | None:
        return self.top1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return asdict(self)


class _TrialFailed(Exception):
    """Ends a trial as failed with a one-line reason (divergence, a bad checkpoint)."""


class ProxyEvaluator:
    """Scores cells by proxy training, as `ProxyConfig` says; see the module docstring for the call order."""

    def __init__(self, config: ProxyConfig | None = None) -> None:
        self.config = config or ProxyConfig()

    # ------------------------------------------------------------------------------------------------ public API
    def evaluate(self, spec: CellSpec | str | None = None, *, report: ReportFn | None = None,
                 checkpoint_dir: str | Path | None = None, test: bool = False) -> EvaluationResult:
        """Train the proxy with `spec` inserted (None or "none": the backbone alone) and score it; never raises."""
        start, cpu_start = time.perf_counter(), time.process_time()
        result = EvaluationResult(status="failed", seed=self.config.seed)
        previous_determinism = torch.are_deterministic_algorithms_enabled()
        previous_threads = torch.get_num_threads()
        try:
            spec = _as_spec(spec)
            result.spec_hash = spec.hash if spec is not None else "none"
            self._run(spec, result, report, Path(checkpoint_dir) if checkpoint_dir else None, test)
        except _TrialFailed as failure:
            result.status, result.reason = "failed", str(failure)
        except Exception as error:  # noqa: BLE001 - a trial must never take the worker down
            result.status = "failed"
            result.reason = f"{type(error).__name__}: {error}".splitlines()[0]
            result.traceback = "".join(traceback.format_exception(error))[-4000:]
        finally:
            torch.use_deterministic_algorithms(previous_determinism)
            torch.set_num_threads(previous_threads)
            result.wall_time = time.perf_counter() - start
            result.cpu_time = time.process_time() - cpu_start
        return result

    def splits(self) -> Splits:
        """The data this evaluator trains and scores on (built on first use, then shared)."""
        return load_splits(self.config.data)

    def pretrained_backbone(self) -> dict[str, torch.Tensor] | None:
        """The weights every trial's backbone starts from (None with `pretrain_epochs` 0: random weights)."""
        if self.config.pretrain_epochs == 0:
            return None
        return pretrained_backbone(self.config, resolve_device(self.config.device),
                                   train=train_backbone_alone)

    def build_model(self, spec: CellSpec | str | None, num_classes: int,
                    clip_shape: tuple[int, int, int, int], *, seed: int | None = None,
                    backbone_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """The backbone with `spec` inserted at the configured placements, initialised from `seed` (default: the
        trial's seed); the backbone's weights are then replaced by `backbone_state` when given, so only the cell's
        come from the seed."""
        from attnas.cells.backbones import BACKBONES, create_backbone
        from attnas.cells.insert import insert

        config = self.config
        args = dict(config.backbone_args)
        if "input_shape" in inspect.signature(BACKBONES[config.backbone]).parameters:
            args.setdefault("input_shape", tuple(clip_shape))
        torch.manual_seed(config.seed if seed is None else seed)
        model = create_backbone(config.backbone, num_classes=num_classes, **args)
        if backbone_state is not None:
            model.load_state_dict(backbone_state)
        return insert(model, _as_spec(spec), list(config.at), example_input=torch.zeros(2, *clip_shape))

    # ------------------------------------------------------------------------------------------------ the trial
    def _run(self, spec: CellSpec | None, result: EvaluationResult, report: ReportFn | None,
             checkpoint_dir: Path | None, test: bool) -> None:
        config = self.config
        device = resolve_device(config.device)
        result.device = str(device)
        torch.set_num_threads(config.threads or available_cpus())
        torch.use_deterministic_algorithms(True, warn_only=True)
        times = result.times

        with _timer(times, "data"):
            splits = self.splits()
        with _timer(times, "pretrain"):
            backbone_state = self.pretrained_backbone()
        with _timer(times, "build"):
            replicas = [_Replica(seed, self.build_model(spec, splits.num_classes, splits.clip_shape, seed=seed,
                                                        backbone_state=backbone_state))
                        for seed in range(config.seed, config.seed + config.repeats)]
            for replica in replicas:
                replica.frozen = freeze_front(replica.model, config, splits.clip_shape)
        with _timer(times, "complexity"):
            from attnas.cells.complexity import count_macs

            complexity = count_macs(replicas[0].model, torch.zeros(1, *splits.clip_shape))
            result.params, result.macs = complexity.params, complexity.macs

        steps_per_epoch = batch_count(len(splits.train.labels), config.batch_size)
        for replica in replicas:
            replica.model.to(device)
        amp, scaling = autocast(config, device)
        with _timer(times, "features"):
            inputs = trial_inputs(config, replicas[0].model, replicas[0].frozen, splits, device, test=test, amp=amp)
        result.feature_path = inputs.path
        for replica in replicas:
            replica.scaler = torch.amp.GradScaler(device.type) if scaling else None
            replica.optimizer = make_optimizer(replica.model, config)
            replica.scheduler = torch.optim.lr_scheduler.LambdaLR(
                replica.optimizer, lr_schedule(config.schedule, config.warmup, config.epochs * steps_per_epoch))
        first_epoch = 0
        identity = trial_identity(config, result.spec_hash)
        checkpoint = checkpoint_path(checkpoint_dir) if checkpoint_dir else None
        if checkpoint is not None and checkpoint.exists():
            first_epoch = _load_checkpoint(checkpoint, identity, replicas, result, device)
            result.resumed_from = first_epoch

        result.status = "ok"
        for epoch in range(first_epoch, config.epochs):
            per_seed = []
            rows = validation_rows(len(splits.validation.labels), config, last=epoch + 1 == config.epochs)
            for replica in replicas:
                with _timer(times, "train"):
                    train_loss = self._train_epoch(replica, inputs, epoch, device, amp)
                with _timer(times, "validate"):
                    scores = score(replica.model, inputs.splits.validation, config.eval_batch_size, device, amp,
                                   splits.num_classes, inputs=inputs, rows=rows)
                per_seed.append({"train_loss": train_loss, **scores})
            metrics = {"epoch": epoch + 1, **_mean_metrics(per_seed), "lr": replicas[0].scheduler.get_last_lr()[0],
                       "validated_on": len(rows)}
            if len(replicas) > 1:
                metrics["top1_per_seed"] = [m["top1"] for m in per_seed]
            result.curve.append(metrics)
            result.epochs = epoch + 1
            result.top1, result.top5, result.loss = metrics["top1"], metrics["top5"], metrics["loss"]
            if checkpoint is not None:
                with _timer(times, "checkpoint"):
                    _save_checkpoint(checkpoint, identity, replicas, result)
            reported = {**{k: v for k, v in metrics.items() if k != "top1_per_seed"}, "feature_path": inputs.path}
            if report is not None and report(epoch + 1, reported):
                result.status = "stopped"
                break

        if test:
            with _timer(times, "test"):
                scores = _mean_metrics([score(r.model, inputs.splits.test, config.eval_batch_size, device, amp,
                                              splits.num_classes, inputs=inputs) for r in replicas])
            result.test_top1, result.test_top5, result.test_loss = scores["top1"], scores["top5"], scores["loss"]
        if config.measure_latency:
            with _timer(times, "latency"):
                example = torch.zeros(config.latency_batch, *splits.clip_shape, device=device)
                result.latency = _latency(replicas[0].model, example, amp)

    def _train_epoch(self, replica: "_Replica", inputs: TrialInputs, epoch: int, device: torch.device,
                     amp: contextlib.AbstractContextManager) -> float:
        config = self.config
        model, optimizer, scheduler = replica.model, replica.optimizer, replica.scheduler
        train_mode(model, replica.frozen)
        train = inputs.splits.train
        n = len(train.labels)
        # the data order (and augmentation) is a pure function of (seed, epoch): a resumed trial sees the same batches
        generator = torch.Generator().manual_seed(replica.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=generator).numpy()
        flip = torch.rand(n, generator=generator).numpy() < 0.5 if inputs.flip else None
        total, count = 0.0, 0
        for step, batch in enumerate(batch_indices(order, config.batch_size)):
            x, y = inputs.tensors(train, batch, device, flip=flip)
            with amp:
                logits = inputs.forward(model, x)
            loss = self._loss(logits.float(), y)
            if not torch.isfinite(loss):
                raise _TrialFailed(f"diverged: training loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            if replica.scaler is not None:  # fp16: scaled so that small gradients do not underflow
                replica.scaler.scale(loss).backward()
                replica.scaler.step(optimizer)
                replica.scaler.update()
            else:
                loss.backward()
                optimizer.step()
            scheduler.step()
            total += loss.item() * len(batch)
            count += len(batch)
        return total / count

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)


# ---------------------------------------------------------------------------------------------------- helpers
def available_cpus() -> int:
    """The number of CPUs this process may run on (what Ray or taskset gave it), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def autocast(config: ProxyConfig, device: torch.device) -> tuple[contextlib.AbstractContextManager, bool]:
    """The autocast context of `config.precision` on `device` (auto: bf16 on a GPU, fp32 on CPU), and whether the
    loss needs a gradient scaler (fp16)."""
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext(), False
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype), precision == "fp16"


def resolve_device(name: str) -> torch.device:
    """"auto": the first visible GPU if any, else CPU; "cpu"; "cuda"/"cuda:K" (raises if no GPU is visible)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AttnasError(f"proxy config: device {name!r} asked for, but this trial sees no GPU")
    try:
        return torch.device(name)
    except RuntimeError:
        raise AttnasError(f"proxy config: device must be auto, cpu, cuda or cuda:K, got {name!r}") from None


def validation_rows(n: int, config: ProxyConfig, *, last: bool) -> np.ndarray:
    """The validation clips an epoch is scored on: all `n` at the last epoch (the reward) or with
    `validation_subset` 0, else a fixed subset of `validation_subset` (the same in every trial and epoch)."""
    if last or config.validation_subset == 0 or config.validation_subset >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).permutation(n)[:config.validation_subset])


def score(model: nn.Module, data, batch_size: int, device: torch.device, amp: contextlib.AbstractContextManager,
          num_classes: int, *, inputs: TrialInputs | None = None, rows: np.ndarray | None = None
          ) -> dict[str, float | None]:
    """Top-1, top-5 (None with 5 classes or fewer) and mean cross-entropy of `model` on `data` (its `rows`, default
    all; clips, or cached features with their `inputs`), in eval mode without autograd."""
    model.eval()
    rows = np.arange(len(data.labels)) if rows is None else rows
    n = len(rows)
    correct1 = correct5 = 0
    loss = 0.0
    with torch.inference_mode():
        for batch in (rows[i:i + batch_size] for i in range(0, n, batch_size)):
            x, y = (inputs.tensors(data, batch, device) if inputs is not None else to_tensors(data, batch, device))
            with amp:
                logits = (inputs.forward(model, x) if inputs is not None else model(x)).float()
            loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            top = logits.topk(min(5, num_classes), dim=1).indices
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(dim=1).sum().item()
    return {"top1": correct1 / n, "top5": correct5 / n if num_classes > 5 else None, "loss": loss / n}


def _latency(model: nn.Module, example: torch.Tensor, amp: contextlib.AbstractContextManager) -> float:
    """Median seconds of one inference forward pass; on a GPU each call waits for the kernels to finish."""
    from attnas.cells.complexity import measure_latency

    synchronize = torch.cuda.synchronize if example.is_cuda else (lambda: None)

    def forward() -> None:
        with amp:
            model(example)
        synchronize()

    model.eval()
    with torch.no_grad():
        return measure_latency(forward, repeats=10, warmup=2).median


def _as_spec(spec: CellSpec | str | None) -> CellSpec | None:
    if spec is None or spec == "none":
        return None
    if isinstance(spec, str):
        return load_zoo(spec)
    if not isinstance(spec, CellSpec):
        raise AttnasError(f"evaluate: expected a CellSpec, a zoo cell name or None, got {type(spec).__name__}")
    return spec


def to_tensors(data, batch: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of normalised float clips and labels on `device`, from (possibly memory-mapped) uint8 data."""
    return batch_tensors(data, batch, device)


def batch_count(n: int, batch_size: int) -> int:
    """How many batches `batch_indices` makes of `n` clips."""
    return len(batch_indices(np.arange(n), batch_size))


def batch_indices(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """`order` cut into batches of `batch_size`, without a trailing batch of a single clip."""
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()  # a batch of one clip breaks BatchNorm in training mode
    return batches


def make_optimizer(model: nn.Module, config: ProxyConfig) -> torch.optim.Optimizer:
    """The trial's optimiser (SGD with Nesterov momentum, or AdamW) over `model.parameters()`."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.momentum > 0)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def lr_schedule(name: str, warmup: float, total_steps: int) -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up over `warmup` of the steps, then cosine to zero (onecycle, cosine)
    or flat (constant). A plain function, so the scheduler's state dict holds only numbers."""
    warm = max(1, round(warmup * total_steps)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if name == "constant":
            return 1.0
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@contextlib.contextmanager
def _timer(times: dict[str, float], name: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - start


@dataclass
class _Replica:
    """One of the `repeats` models a trial trains in lockstep: its seed, model, optimiser and LR schedule."""

    seed: int
    model: nn.Module
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    frozen: list[nn.Module] = field(default_factory=list)  # the pretrained front, kept in eval mode
    scaler: torch.amp.GradScaler | None = None  # fp16 only

    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])


def _mean_metrics(per_seed: list[dict[str, float | None]]) -> dict[str, float | None]:
    """The mean of each metric over the replicas (None where a metric is undefined, as top-5 with few classes)."""
    return {key: None if any(m[key] is None for m in per_seed) else sum(m[key] for m in per_seed) / len(per_seed)
            for key in per_seed[0]}


def _save_checkpoint(path: Path, identity: str, replicas: list["_Replica"], result: EvaluationResult) -> None:
    save_checkpoint(path, identity=identity, epoch=result.epochs, replicas=[r.state_dict() for r in replicas],
                    curve=result.curve)


def _load_checkpoint(path: Path, identity: str, replicas: list["_Replica"], result: EvaluationResult,
                     device: torch.device) -> int:
    try:
        state = load_checkpoint(path, identity=identity, map_location=device)
    except CheckpointError as error:
        raise _TrialFailed(str(error)) from None
    for replica, saved in zip(replicas, replica_states(state)):
        replica.load_state_dict(saved)
    torch.set_rng_state(state["torch_rng"].cpu())
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    result.curve = state["curve"]
    result.epochs = int(state["epoch"])
    if result.curve:
        last = result.curve[-1]
        result.top1, result.top5, result.loss = last["top1"], last["top5"], last["loss"]
    return result.epochs


def train_backbone_alone(pretraining: ProxyConfig) -> dict[str, torch.Tensor]:
    """The final weights of a trial of the backbone alone run as `pretraining` says (evaluators.pretrained caches
    them); raises AttnasError if that trial fails."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="attnas-pretrain-") as folder:
        result = ProxyEvaluator(pretraining).evaluate(None, checkpoint_dir=folder)
        if result.status != "ok":
            epochs = f"{pretraining.epochs} epoch" + ("s" if pretraining.epochs != 1 else "")
            raise AttnasError(f"pretraining the backbone alone ({epochs} at seed {pretraining.seed}) failed: "
                              f"{result.reason}")
        return model_weights(folder)
