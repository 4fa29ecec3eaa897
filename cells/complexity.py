"""Parameters, multiply-adds and latency of any model, on torch's own FLOP counting.

`count_macs` runs the model once under torch.utils.flop_counter.FlopCounterMode and reports multiply-adds
(MACs = FLOPs / 2, since FlopCounterMode counts a multiply-add as 2 FLOPs). This is the quantity the A^2-Nets paper
calls "FLOPs" ("floating-point multiplication-adds"). What is counted is what FlopCounterMode counts: convolutions
(with their transposed/backward forms), linear layers and every matrix product - mm, addmm, bmm, matmul, einsum's
products and scaled_dot_product_attention (Q K^T and A V) - so attention matmuls are included. Elementwise work
(BatchNorm, ReLU, softmax, pooling, residual adds) and a convolution's or linear layer's bias are not counted, as in
the paper's convention.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from attnas.cells.errors import CellBuildError


def _count_cpu_flash_attention_flops() -> None:
    """Teach torch's FlopCounterMode the CPU flash-attention kernels scaled_dot_product_attention runs on CPU.

    It knows the CUDA kernels' formulas but not these, so without this every FLOP count of a cell on CPU
    (cells.complexity) would miss Q K^T and A V. The formulas are torch's own for its CUDA flash kernels.
    """
    from torch.utils import flop_counter

    aten = torch.ops.aten
    # The CPU kernels take query, key, value (and grad_out first, backward) as the CUDA flash kernels do.
    for cpu, cuda in ((aten._scaled_dot_product_flash_attention_for_cpu, aten._scaled_dot_product_flash_attention),
                      (aten._scaled_dot_product_flash_attention_for_cpu_backward,
                       aten._scaled_dot_product_flash_attention_backward)):
        if cpu not in flop_counter.flop_registry and cuda in flop_counter.flop_registry:
            flop_counter.register_flop_formula(cpu, get_raw=True)(flop_counter.flop_registry[cuda])


_count_cpu_flash_attention_flops()


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """The number of parameters of `model` (BatchNorm scale and shift included, running statistics not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@dataclass(frozen=True)
class Complexity:
    """A model's cost on one input: parameters, multiply-adds (MACs = FLOPs / 2) and MACs per module."""

    params: int
    macs: int
    macs_by_module: dict[str, int]

    @property
    def flops(self) -> int:
        """FLOPs in torch's convention (2 per multiply-add)."""
        return 2 * self.macs


def _example_input(model: nn.Module, example_input: torch.Tensor | None, batch_size: int) -> torch.Tensor:
    if example_input is not None:
        return example_input
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise CellBuildError(f"{type(model).__name__} has no input_shape attribute; pass example_input= a batch it "
                             "accepts")
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    return torch.zeros(batch_size, *shape, device=device, dtype=dtype)


def count_macs(model: nn.Module | Callable, example_input: torch.Tensor | None = None, *, batch_size: int = 1,
               depth: int = 2) -> Complexity:
    """Parameters and multiply-adds of one forward pass of `model` on `example_input`.

    `example_input` defaults to a batch of `batch_size` zero clips of the model's `input_shape`. MACs are for the
    whole batch; `macs_by_module` breaks them down by module ("VideoNet.conv4.units", up to `depth` levels below the
    model's class name; "Global" is the total). The
    model runs in eval mode under no_grad (its train/eval state is restored), so BatchNorm statistics do not move.
    """
    x = _example_input(model, example_input, batch_size)
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=depth) as counter:
            model(x)
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)
    by_module = {name: sum(counts.values()) // 2 for name, counts in counter.get_flop_counts().items()
                 if name == "Global" or name.count(".") < depth}
    params = count_params(model) if isinstance(model, nn.Module) else 0
    return Complexity(params=params, macs=counter.get_total_flops() // 2, macs_by_module=by_module)


@dataclass(frozen=True)
class Latency:
    """Wall-clock time of repeated calls: the median (the figure to report), quartiles and every sample, seconds."""

    median: float
    q1: float
    q3: float
    samples: tuple[float, ...]


def measure_latency(function: Callable[[], object], *, repeats: int = 20, warmup: int = 3) -> Latency:
    """Time `function()` `repeats` times after `warmup` untimed calls; report the median and quartiles."""
    if repeats < 1 or warmup < 0:
        raise CellBuildError(f"measure_latency: repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    if len(samples) >= 2:
        q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    else:
        q1 = median = q3 = samples[0]
    return Latency(median=median, q1=q1, q3=q3, samples=tuple(samples))


def forward_latency(model: nn.Module, example_input: torch.Tensor | None = None, *, batch_size: int = 1,
                    repeats: int = 20, warmup: int = 3) -> Latency:
    """Median inference latency of `model` (eval mode, no_grad) on `example_input` or a batch of its input_shape."""
    x = _example_input(model, example_input, batch_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return measure_latency(lambda: model(x), repeats=repeats, warmup=warmup)
    finally:
        model.train(was_training)
