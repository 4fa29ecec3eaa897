"""Proxy I3D training throughput and model FLOP utilisation (MFU) on CPU, with no cell, non_local and
double_attention, against a GEMM measured in the same run.

One training step = forward + cross-entropy + backward + SGD step on a batch of the quick-start settings (the
evaluator's default proxy: `evaluators.config.ProxyConfig()` backbone arguments and placements, the default
synthetic task's clip shape, the quick-start batch size). Its FLOPs are counted by FlopCounterMode over forward and
backward (2 FLOPs per multiply-add); achieved GFLOP/s = those FLOPs / median step time; MFU = achieved GFLOP/s over
the rate of a square fp32 torch.mm with the FLOPs of one plain step. All variants and the GEMM are timed round-robin
(one step of each per round), so a load change on a shared machine hits them alike. The section also times the
layout choices that were changed (channels_last_3d, pooling instead of strided convolutions), so the finding stays
measured.

    python benchmarks/proxy_mfu.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import table, write_section  # noqa: E402
from attnas.cells.backbones import create_backbone  # noqa: E402
from attnas.cells.insert import insert  # noqa: E402

CELLS = ("none", "non_local", "double_attention")
NUM_CLASSES = 10
BEFORE = {"channels_last": False, "downsample": "conv"}  # the first proxy: NCDHW, strided convolutions
LAYOUTS = [("NCDHW, strided convs (first version)", BEFORE),
           ("NCDHW, max-pool downsampling", {"channels_last": False}),
           ("channels_last_3d, strided convs", {"downsample": "conv"}),
           ("channels_last_3d, max-pool downsampling (default)", {})]


def quickstart_settings() -> dict:
    """The evaluator's default proxy (backbone arguments, placements), clip shape and the quick-start batch size."""
    settings = {"backbone_args": {}, "at": ["conv3:0"], "clip_shape": (3, 16, 32, 32), "batch_size": 16,
                "source": "built-in defaults (evaluators not importable)"}
    try:
        import yaml

        from attnas.evaluators.config import ProxyConfig
        from attnas.evaluators.data.synthetic import create_task

        config = ProxyConfig()
        quickstart = Path(__file__).resolve().parent.parent / "experiments" / "configs" / "quickstart.yaml"
        batch = yaml.safe_load(quickstart.read_text()).get("evaluator", {}).get("batch_size", config.batch_size)
        task = create_task(config.data.task, **config.data.fields)
        settings.update(backbone_args=dict(config.backbone_args), at=list(config.at),
                        clip_shape=tuple(task.clip_shape), batch_size=int(batch),
                        source="attnas.evaluators.config.ProxyConfig(), default synthetic task, "
                               "quickstart.yaml batch size")
    except Exception as error:  # noqa: BLE001 - the benchmark still runs on its own defaults
        settings["source"] += f": {type(error).__name__}: {error}".splitlines()[0]
    return settings


def build(cell: str, settings: dict, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    args = {**settings["backbone_args"], "input_shape": settings["clip_shape"], **overrides}
    model = create_backbone("proxy_i3d", num_classes=NUM_CLASSES, **args)
    return insert(model, None if cell == "none" else cell, at=settings["at"]).train()


def step_flops(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(clips), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def training_step(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(clips), labels).backward()
        optimizer.step()

    return step


def round_robin(functions: dict, repeats: int, warmup: int = 3) -> dict:
    """Median seconds per call of each function, calling them in turn (one call of each per round)."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    samples: dict = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def cell_map_size(settings: dict, clips: torch.Tensor) -> tuple[int, ...]:
    """(C, T, H, W) of the map the first placement emits, where the cell runs."""
    model = build("none", settings).eval()
    seen = []
    block = model.get_submodule(model.placements()[settings["at"][0]])
    handle = block.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape[1:])))
    with torch.no_grad():
        model(clips[:1])
    handle.remove()
    return seen[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, one thread only, no layout ablation")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    thread_counts = [1] if args.quick else [1, 2]
    settings = quickstart_settings()
    batch = settings["batch_size"]
    generator = torch.Generator().manual_seed(0)
    clips = torch.randn(batch, *settings["clip_shape"], generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)

    load_before = os.getloadavg()[0]
    flops = {cell: step_flops(build(cell, settings), clips, labels) for cell in CELLS}
    n = max(64, round((flops["none"] / 2) ** (1 / 3)))  # a square mm with the FLOPs of one plain step
    a, b = torch.randn(n, n), torch.randn(n, n)
    rows, measured = [], {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        functions = {cell: training_step(build(cell, settings), clips, labels) for cell in CELLS}
        functions["gemm"] = lambda: torch.mm(a, b)
        seconds = round_robin(functions, repeats)
        gemm = 2 * n**3 / seconds["gemm"] / 1e9
        for cell in CELLS:
            achieved = flops[cell] / seconds[cell] / 1e9
            measured[threads, cell] = (seconds[cell], achieved / gemm)
            rows.append([threads, cell, f"{flops[cell] / 1e9:.2f}", f"{seconds[cell] * 1e3:.1f}",
                         f"{batch / seconds[cell]:.0f}", f"{achieved:.1f}", f"{gemm:.1f} (n={n})",
                         f"{100 * achieved / gemm:.0f} %"])

    cell_share = max(flops[cell] - flops["none"] for cell in CELLS) / flops["none"]
    plain_seconds, plain_mfu = measured[1, "none"]
    body = [
        f"Settings ({settings['source']}): proxy_i3d with {settings['backbone_args'] or 'default arguments'}, clips "
        f"{'x'.join(map(str, settings['clip_shape']))}, batch {batch}, cells at {', '.join(settings['at'])} (a "
        f"{'x'.join(map(str, cell_map_size(settings, clips)))} map), {NUM_CLASSES} classes, fp32, SGD with momentum. "
        "Step FLOPs = forward + backward as counted by FlopCounterMode (2 per multiply-add). GEMM = square torch.mm "
        f"with the FLOPs of one plain step. Median of {repeats} steps after 3 warm-up steps, all variants and the "
        "GEMM timed round-robin in the same run.",
        "",
        table(["threads", "cell", "GFLOP / step", "ms / step", "clips/s", "achieved GFLOP/s", "GEMM GFLOP/s",
               "MFU"], rows),
        "",
        f"One thread: the plain proxy reaches {100 * plain_mfu:.0f} % of the GEMM rate; non_local costs "
        f"{measured[1, 'non_local'][0] / plain_seconds:.2f}x and double_attention "
        f"{measured[1, 'double_attention'][0] / plain_seconds:.2f}x the plain step time, for at most "
        f"{100 * cell_share:.1f} % more FLOPs.",
    ]

    if not args.quick:
        torch.set_num_threads(1)
        functions, ablation_flops = {}, {}
        runs = [(cell, label, overrides) for cell in CELLS for label, overrides in LAYOUTS]
        stem = 2 * settings["backbone_args"].get("stem_width", 16)
        widths = tuple(2 * w for w in settings["backbone_args"].get("widths", (16, 32, 64)))
        wide = f"default layout, twice the widths (stem {stem}, widths {'/'.join(map(str, widths))})"
        runs.append(("none", wide, {"stem_width": stem, "widths": widths}))
        for cell, label, overrides in runs:
            model = build(cell, settings, **overrides)
            ablation_flops[cell, label] = step_flops(model, clips, labels)
            functions[cell, label] = training_step(model, clips, labels)
        functions["gemm"] = lambda: torch.mm(a, b)
        seconds = round_robin(functions, repeats)
        gemm = 2 * n**3 / seconds.pop("gemm") / 1e9
        mfu = {key: ablation_flops[key] / seconds[key] / 1e9 / gemm for key in seconds}
        ablation_rows = [[cell, label, f"{seconds[cell, label] * 1e3:.1f}",
                          f"{ablation_flops[cell, label] / seconds[cell, label] / 1e9:.1f}",
                          f"{100 * mfu[cell, label]:.0f} %"] for cell, label, _ in runs]
        first, default = LAYOUTS[0][0], LAYOUTS[-1][0]
        speedups = ", ".join(f"{cell} {seconds[cell, first] / seconds[cell, default]:.2f}x" for cell in CELLS)
        body += [
            "",
            "**What was slow and what changed.** Profiling the first proxy (NCDHW tensors, strided convolutions) "
            "showed oneDNN reordering NCDHW activations to its blocked layout and back (aten::copy_ about 20 % of "
            "a step) and slow backward passes of the strided 3x3x3 and 1x1x1 shortcut convolutions. The backbones "
            "now hold weights and activations in torch.channels_last_3d (`channels_last=True`, the proxy's "
            "default; VideoNet moves its input to that layout and `insert` converts the cells it adds to the "
            "model's layout, so a cell never forces a reorder) and the proxy enters each stage through a max pool, "
            "as I3D does (`downsample=\"pool\"`), keeping every convolution at stride 1. Measured round-robin at "
            f"one thread (GEMM {gemm:.1f} GFLOP/s in this run); speed-up of the default over the first version: "
            f"{speedups}.",
            "",
            table(["cell", "layout", "ms / step", "achieved GFLOP/s", "MFU"], ablation_rows),
            "",
            "What keeps the plain proxy below the GEMM rate is its narrowness, not the cells: with a few dozen "
            "channels each convolution does little work per element, so BatchNorm, ReLU and max pooling (forward and "
            "backward, memory-bound; about a third of a profiled step) and the 3-channel stem convolution take a "
            f"large share. The twice-as-wide proxy reaches {100 * mfu['none', wide]:.0f} % against "
            f"{100 * mfu['none', default]:.0f} % for the default in this run. On a shared, loaded machine the "
            "2-thread rows can collapse: OpenMP threads wait at every barrier for a sibling that is descheduled, "
            "so a trial should use no more threads than the cores it actually owns.",
        ]
    body += ["", f"Machine load (1-minute load average, {os.cpu_count()} cores): {load_before:.1f} at the start of the "
             f"run, {os.getloadavg()[0]:.1f} at the end; with load above the core count, timings are only comparable "
             "within one run."]
    text = "\n".join(body)
    write_section("proxy_mfu", "Proxy I3D training throughput and FLOP utilisation (CPU)", text)
    print(text)


if __name__ == "__main__":
    main()
