"""Differentiable cell search (DARTS family) on the proxy task: a supernet cell (cells.supernet) in the proxy
backbone, its weights trained on the train split and its architecture weights on the validation split, alternately.

Call order of `DifferentiableSearch(proxy, settings, space).epochs()` (a generator, one `SearchEpoch` per epoch):
1. resources as the proxy trial (device from `proxy.device`, threads, deterministic algorithms);
2. the proxy backbone from `proxy.seed` (starting from the pretrained backbone, as a proxy trial does; see
   evaluators.pretrained) with a supernet cell at every placement of `proxy.at`;
3. each step: one architecture step on the next validation batch (Adam on the architecture logits, DARTS's
   settings), then one weight step on the next train batch (the proxy's optimiser and schedule); the first
   `warmup_epochs` epochs take weight steps only. With `sampling: gumbel` each training forward runs one cell
   drawn from the architecture weights (GDAS);
4. end of each epoch: the supernet's validation top-1 (softmax-mixed), the derived cell (`SupernetCell.derive`),
   the top-1 of that cell inheriting the supernet's weights (one-hot architecture, no retraining), and the
   architecture weights.

First-order: the architecture gradient is taken at the current weights, not through one unrolled weight step.
Liu et al. report the second-order version a little better on CIFAR-10 at about 1.5-2x the cost per step and
twice the memory; on a CPU proxy where a search must cost a few proxy trials, first-order is the better trade.
Data order is a pure function of (seed, epoch), so a search is deterministic for a seed on CPU.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any, Literal

import torch
from torch import nn

from attnas.cells.supernet import SupernetCell, insert_supernet, supernet_cells
from attnas.evaluators.config import ProxyConfig
from attnas.evaluators.pretrained import freeze_front, train_mode
from attnas.evaluators.proxy import (
    ProxyEvaluator,
    batch_count,
    batch_indices,
    make_optimizer,
    lr_schedule,
    to_tensors,
    available_cpus,
    resolve_device,
    score,
)
from attnas.search_space import AttnasError, CellSpec, SearchSpace


@dataclass(frozen=True)
class DifferentiableConfig:
    """Settings of a differentiable search (the experiment's `controller:` section, name `differentiable`).

    `epochs`: search epochs (None: the evaluator's epochs); `warmup_epochs`: weight-only epochs first;
    `arch_lr`, `arch_weight_decay`, `arch_betas`: Adam on the architecture logits (DARTS: 3e-4, 1e-3, (0.5, 0.999)
    over some 20,000 steps; a CPU proxy search takes a few hundred, and Adam moves a logit by about lr per step, so
    1e-2 lets the weights move by a few units); `width`: the inner width the supernet is built for (None:
    the space's first); `retrain`: re-train the final derived cell as a normal trial; `sampling`:
    "softmax" mixes every candidate in every forward (DARTS), "gumbel" trains one cell drawn per step with hard
    Gumbel-softmax and straight-through gradients (GDAS), at a temperature going linearly from `tau_start` to
    `tau_end` over the epochs: a step then costs about one cell, which makes large spaces affordable."""

    epochs: int | None = None
    warmup_epochs: int = 0
    arch_lr: float = 1e-2
    arch_weight_decay: float = 1e-3
    arch_betas: tuple[float, float] = (0.5, 0.999)
    width: float | None = None
    retrain: bool = True
    sampling: Literal["softmax", "gumbel"] = "softmax"
    tau_start: float = 10.0
    tau_end: float = 0.1

    def __post_init__(self) -> None:
        checks = [(self.epochs is None or self.epochs >= 1, "epochs", ">= 1 or null", self.epochs),
                  (self.warmup_epochs >= 0, "warmup_epochs", ">= 0", self.warmup_epochs),
                  (self.arch_lr > 0, "arch_lr", "> 0", self.arch_lr),
                  (self.arch_weight_decay >= 0, "arch_weight_decay", ">= 0", self.arch_weight_decay),
                  (len(self.arch_betas) == 2 and all(0 <= b < 1 for b in self.arch_betas), "arch_betas",
                   "two numbers in [0, 1)", self.arch_betas),
                  (self.sampling in ("softmax", "gumbel"), "sampling", "softmax or gumbel", self.sampling),
                  (self.tau_start > 0 and self.tau_end > 0, "tau_start and tau_end", "> 0",
                   (self.tau_start, self.tau_end))]
        for ok, name, expected, value in checks:
            if not ok:
                raise AttnasError(f"differentiable search: {name} must be {expected}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchEpoch:
    """One search epoch: the derived cell, the architecture weights (one record per supernet cell, see
    `SupernetCell.architecture_weights`) and metrics (train_loss, supernet_top1, derived_top1, seconds)."""

    epoch: int
    cell: CellSpec
    weights: list[dict[str, Any]]
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cell": self.cell.to_dict(), "weights": self.weights, "metrics": self.metrics}


class DifferentiableSearch:
    """First-order DARTS over `space` on the proxy task `proxy`; see the module docstring for the call order."""

    def __init__(self, proxy: ProxyConfig, settings: DifferentiableConfig, space: SearchSpace) -> None:
        self.proxy = proxy
        self.settings = settings
        self.space = space
        self.evaluator = ProxyEvaluator(proxy)
        self.frozen: list[nn.Module] = []  # the pretrained front `build` fixed, kept in eval mode

    @property
    def epoch_count(self) -> int:
        return self.settings.epochs or self.proxy.epochs

    def build(self, num_classes: int, clip_shape: tuple[int, int, int, int]) -> nn.Module:
        """The proxy backbone (seeded, pretrained and with its front frozen as a proxy trial's) with a supernet cell
        at each placement."""
        model = self.evaluator.build_model(None, num_classes, clip_shape,
                                           backbone_state=self.evaluator.pretrained_backbone())
        self.frozen = freeze_front(model, self.proxy, clip_shape)
        insert_supernet(model, self.space, list(self.proxy.at), width=self.settings.width,
                        example_input=torch.zeros(2, *clip_shape))
        return model

    def epochs(self) -> Iterator[SearchEpoch]:
        """Run the search, yielding after each epoch."""
        config, settings = self.proxy, self.settings
        previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
        device = resolve_device(config.device)
        torch.set_num_threads(config.threads or available_cpus())
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            splits = self.evaluator.splits()
            model = self.build(splits.num_classes, splits.clip_shape).to(device)
            cells = supernet_cells(model)
            arch = [p for cell in cells for p in cell.architecture_parameters()]
            arch_ids = {id(p) for p in arch}
            weights = [p for p in model.parameters() if id(p) not in arch_ids]
            weight_optimizer = make_optimizer(SimpleNamespace(parameters=lambda: iter(weights)), config)
            steps = batch_count(len(splits.train.labels), config.batch_size)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                weight_optimizer, lr_schedule(config.schedule, config.warmup, self.epoch_count * steps))
            arch_optimizer = torch.optim.Adam(arch, lr=settings.arch_lr, betas=tuple(settings.arch_betas),
                                              weight_decay=settings.arch_weight_decay)
            amp = contextlib.nullcontext()
            for epoch in range(self.epoch_count):
                start = time.perf_counter()
                for cell in cells:
                    cell.gumbel_tau = self.temperature(epoch) if settings.sampling == "gumbel" else None
                train_loss = self._train_epoch(model, weight_optimizer, scheduler, arch_optimizer, splits, epoch,
                                               device, search=epoch >= settings.warmup_epochs)
                supernet = score(model, splits.validation, config.eval_batch_size, device, amp, splits.num_classes)
                derived = cells[0].derive()
                weights_record = [cell.architecture_weights() for cell in cells]
                derived_top1 = self._inherited_score(model, cells, splits, device)
                yield SearchEpoch(epoch=epoch + 1, cell=derived, weights=weights_record, metrics={
                    "train_loss": train_loss, "supernet_top1": supernet["top1"], "supernet_loss": supernet["loss"],
                    "derived_top1": derived_top1, "seconds": time.perf_counter() - start})
        finally:
            torch.use_deterministic_algorithms(previous[0])
            torch.set_num_threads(previous[1])

    def temperature(self, epoch: int) -> float:
        """The Gumbel-softmax temperature of `epoch` (0-based): linear from tau_start to tau_end."""
        if self.epoch_count == 1:
            return self.settings.tau_end
        fraction = epoch / (self.epoch_count - 1)
        return self.settings.tau_start + fraction * (self.settings.tau_end - self.settings.tau_start)

    def _train_epoch(self, model: nn.Module, weight_optimizer: torch.optim.Optimizer,
                     scheduler: torch.optim.lr_scheduler.LRScheduler, arch_optimizer: torch.optim.Optimizer,
                     splits, epoch: int, device: torch.device, *, search: bool) -> float:
        config = self.proxy
        train_mode(model, self.frozen)
        seed = config.seed * 100_003 + epoch
        train_order = torch.randperm(len(splits.train.labels), generator=torch.Generator().manual_seed(seed)).numpy()
        val_order = torch.randperm(len(splits.validation.labels),
                                   generator=torch.Generator().manual_seed(seed + 50_000)).numpy()
        val_batches = batch_indices(val_order, config.batch_size)
        total, count = 0.0, 0
        for step, batch in enumerate(batch_indices(train_order, config.batch_size)):
            if search:
                x, y = to_tensors(splits.validation, val_batches[step % len(val_batches)], device)
                arch_loss = nn.functional.cross_entropy(model(x), y)
                arch_optimizer.zero_grad(set_to_none=True)
                weight_optimizer.zero_grad(set_to_none=True)
                arch_loss.backward()
                arch_optimizer.step()
            x, y = to_tensors(splits.train, batch, device)
            loss = nn.functional.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
            if not torch.isfinite(loss):
                raise AttnasError(f"differentiable search diverged: training loss {loss.item()} at epoch "
                                  f"{epoch + 1}, step {step + 1}")
            weight_optimizer.zero_grad(set_to_none=True)
            arch_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            weight_optimizer.step()
            scheduler.step()
            total += loss.item() * len(batch)
            count += len(batch)
        return total / max(1, count)

    def _inherited_score(self, model: nn.Module, cells: list[SupernetCell], splits, device) -> float:
        """Validation top-1 of the derived cell with the supernet's weights (architecture fixed one-hot)."""
        saved = [[p.detach().clone() for p in cell.architecture_parameters()] for cell in cells]
        try:
            for cell in cells:
                cell.fix(cell.derivation())
            result = score(model, splits.validation, self.proxy.eval_batch_size, device, contextlib.nullcontext(),
                           splits.num_classes)
        finally:
            with torch.no_grad():
                for cell, values in zip(cells, saved):
                    for parameter, value in zip(cell.architecture_parameters(), values):
                        parameter.copy_(value)
        return result["top1"]


def search_cost(space: SearchSpace, proxy: ProxyConfig, *, width: float | None = None) -> dict[str, float]:
    """Parameters of the proxy with supernet cells, and of one supernet cell (for plans and benchmarks)."""
    search = DifferentiableSearch(proxy, DifferentiableConfig(width=width), space)
    splits = search.evaluator.splits()
    model = search.build(splits.num_classes, splits.clip_shape)
    cells = supernet_cells(model)
    return {"params": float(sum(p.numel() for p in model.parameters())),
            "cell_params": float(sum(p.numel() for p in cells[0].parameters())),
            "candidates": float(len(cells[0].candidates)),
            "modules": float(sum(len(m) for slot in cells[0].slots for m in slot.modules_))}


__all__ = ["DifferentiableConfig", "DifferentiableSearch", "SearchEpoch", "search_cost"]
