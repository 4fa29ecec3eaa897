"""Speed and memory of the non_local and double_attention cells against plain reference blocks.

Writes RESULTS.md section "cell_speed":
1. forward+backward time and peak memory, batch 2, fp32, 1 and 2 threads, of the cells built from cells/zoo at
   ResNet-26's conv2, conv3 and conv4 sizes, each as a ratio to the hand-written block of cells/reference.py
   (Wang et al.'s non-local block; the A^2 block of Eq. 6) measured in the same run;
2. at the A^2 paper's example size (512 channels, 32 frames of 28x28, batch 1), the A^2 block's extra memory with
   left association (Eq. 6, the cell) against the right association (Eq. 7), whose (THW)^2 matrix is 2.5 GB.

Every measurement runs in a fresh subprocess (this script with --worker): peak memory is the rise of the process's
resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs) over its resident set just before the
first forward+backward pass, so it counts everything torch allocates for the pass (activations kept for backward,
temporaries, gradients). Time is the median of the timed passes after that first one. A measurement whose estimated
memory exceeds --memory-limit-gb is not run (its estimate is reported instead), and each worker runs under that
address-space limit so that nothing can exhaust a shared machine.

    python benchmarks/cell_speed.py [--quick]    # --quick: quarter-size clips, two timed passes, no paper-size run
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GIB = 1024 ** 3
MIB = 1024 ** 2
# ResNet-26 (A^2-Nets Table 1) at a 8x112x112 input: (channels, (T, H, W)) after conv2, conv3 and conv4.
STAGES = {"conv2": (128, (8, 56, 56)), "conv3": (256, (8, 28, 28)), "conv4": (512, (8, 14, 14))}
QUICK_STAGES = {"conv2": (128, (4, 28, 28)), "conv3": (256, (4, 14, 14)), "conv4": (512, (4, 7, 7))}
PAPER_EXAMPLE = (512, (32, 28, 28))
BLOCKS = {"non_local": "Wang et al. non-local block", "double_attention": "A^2 block, Eq. (6)"}


# ------------------------------------------------------------------------------------------------------ the worker
def make_module(block: str, impl: str, channels: int):
    """The module a job measures: the cell built from the zoo spec, or the hand-written reference block."""
    from attnas.cells import build
    from attnas.cells.reference import DoubleAttentionBlock, NonLocalBlock
    from attnas.search_space import load_zoo

    if impl == "cell":
        return build(load_zoo(block), channels)
    inner = channels // 4
    if block == "non_local":
        return NonLocalBlock(channels, inner)
    return DoubleAttentionBlock(channels, inner, inner, association="left" if impl == "reference" else "right")


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def worker(job: dict) -> dict:
    """Run one job in this (fresh) process: "memory" (peak of the first pass of one module) or "time" (the median
    pass of each module, passes interleaved so that the load of a shared machine weighs on all of them alike)."""
    limit = int(job["memory_limit_gb"] * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    channels, clip = job["channels"], tuple(job["clip"])
    modules = {}
    for impl in job["impls"]:
        modules[impl] = make_module(job["block"], impl, channels).train()
        # A non-zero BatchNorm scale, so that the attention is on the gradient's path as in a trained network.
        torch.nn.init.ones_(modules[impl].norm.weight if impl == "cell" else modules[impl].bn.weight)
    x = torch.randn(job["batch"], channels, *clip, requires_grad=True)

    def step(module) -> float:
        module.zero_grad(set_to_none=True)
        x.grad = None
        started = time.perf_counter()
        module(x).sum().backward()
        return time.perf_counter() - started

    try:
        if job["kind"] == "memory":
            (module,) = modules.values()
            Path("/proc/self/clear_refs").write_text("5")     # reset the high-water mark to the current RSS
            before = status_kb("VmRSS")
            seconds = step(module)
            return {"peak_bytes": (status_kb("VmHWM") - before) * 1024, "seconds": seconds}
        for module in modules.values():
            step(module)                                      # warm-up
        times = {impl: [] for impl in modules}
        for _ in range(job["repeat"]):
            for impl, module in modules.items():
                times[impl].append(step(module))
        return {impl: {"seconds": statistics.median(values)} for impl, values in times.items()}
    except (RuntimeError, MemoryError) as error:
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}


# -------------------------------------------------------------------------------------------------------- driver
def estimate_bytes(block: str, impl: str, batch: int, channels: int, clip: tuple) -> int:
    """What a pass needs at least, from the matrices it must hold: the P x P ones dominate where they exist."""
    positions = clip[0] * clip[1] * clip[2]
    activations = 12 * batch * channels * positions * 4
    if impl == "reference" and block == "non_local":
        return activations + 4 * batch * positions ** 2 * 4    # logits, softmax, and both their gradients
    if impl == "right":
        return activations + 3 * batch * positions ** 2 * 4    # B^T V, its gradient, one temporary
    return activations


def run_worker(job: dict) -> dict:
    """Run `job` in a fresh subprocess with its thread count."""
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), MKL_NUM_THREADS=str(job["threads"]))
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=3600)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker exited {done.returncode}: {tail[:160]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(*, block: str, impls: tuple[str, ...], channels: int, clip: tuple, batch: int, threads: int,
            repeat: int, limit_gb: float) -> dict[str, dict]:
    """{impl: {"seconds", "peak_bytes"} or {"skipped"/"error"}}: peak memory from one fresh process per impl (one
    thread), time from one process running all impls interleaved (`threads` threads)."""
    results: dict[str, dict] = {}
    job = {"channels": channels, "clip": list(clip), "batch": batch, "block": block, "memory_limit_gb": limit_gb}
    for impl in impls:
        need = estimate_bytes(block, impl, batch, channels, clip)
        if need > limit_gb * GIB:
            results[impl] = {"skipped": f"needs about {need / GIB:.1f} GiB (estimated from its P x P matrices), "
                                        f"over the {limit_gb:g} GiB limit of --memory-limit-gb"}
    runnable = tuple(impl for impl in impls if impl not in results)
    for impl in runnable:
        memory = run_worker({**job, "kind": "memory", "impls": [impl], "threads": 1, "repeat": 0})
        results[impl] = {"peak_bytes": memory["peak_bytes"]} if "peak_bytes" in memory else memory
    timing = run_worker({**job, "kind": "time", "impls": list(runnable), "threads": threads, "repeat": repeat})
    for impl in runnable:
        if "error" in timing:
            results[impl].setdefault("error", timing["error"])
        else:
            results[impl].update(timing[impl])
    return results


def ms(result: dict) -> str:
    return f"{result['seconds'] * 1000:,.0f}" if "seconds" in result else "n/a"


def megabytes(result: dict) -> str:
    return f"{result['peak_bytes'] / MIB:,.0f}" if "peak_bytes" in result else "n/a"


def ratio(a: dict, b: dict, key: str) -> str:
    if key in a and key in b and b[key] > 0:
        return f"{a[key] / b[key]:.2f}"
    return "n/a"


def why_not(result: dict) -> str | None:
    return result.get("skipped") or result.get("error")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="quarter-size clips, two timed passes, no paper example")
    parser.add_argument("--repeat", type=int, default=None, help="timed passes per measurement (default 5; quick 2)")
    parser.add_argument("--memory-limit-gb", type=float, default=12.0,
                        help="address-space limit of each worker; larger estimates are not run (default 12)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    import torch  # noqa: F401  (imported so that RESULTS.md records its version)

    from benchmarks.results import table, write_section

    stages = QUICK_STAGES if args.quick else STAGES
    repeat = args.repeat or (2 if args.quick else 5)
    limit = args.memory_limit_gb
    notes = []
    rows = []
    for block in BLOCKS:
        for stage, (channels, clip) in stages.items():
            by_threads = {}
            for threads in (1, 2):
                by_threads[threads] = measure(block=block, impls=("cell", "reference"), channels=channels,
                                              clip=clip, batch=2, threads=threads, repeat=repeat, limit_gb=limit)
                print(block, stage, threads, by_threads[threads], flush=True)
            for impl, result in by_threads[1].items():
                if why_not(result):
                    notes.append(f"- {block} {impl} at {stage}: not measured, {why_not(result)}.")
            cell1, ref1 = by_threads[1]["cell"], by_threads[1]["reference"]
            cell2, ref2 = by_threads[2]["cell"], by_threads[2]["reference"]
            rows.append([block, stage, f"{channels}x{'x'.join(map(str, clip))}",
                         ms(cell1), ms(ref1), ratio(cell1, ref1, "seconds"),
                         ms(cell2), ms(ref2), ratio(cell2, ref2, "seconds"),
                         megabytes(cell1), megabytes(ref1), ratio(cell1, ref1, "peak_bytes")])

    body = [
        "Forward+backward of one block, batch 2, fp32, training mode, BatchNorm scale 1. Time: median of "
        f"{repeat} passes after a warm-up, cell and reference passes interleaved in one process (so the load of "
        "the shared machine falls on both alike). Peak: rise of resident memory during the first pass, each "
        "block in its own fresh process. Ratios are cell / reference (below 1: the cell is faster or lighter). "
        "The cells are built from cells/zoo (width 1/4; n = C/4 descriptors for A^2); the references are "
        "cells/reference.py's NonLocalBlock (softmax(theta^T phi) g, holding the P x P matrix) and "
        "DoubleAttentionBlock (Eq. 6, left association). The non_local cell runs torch's "
        "scaled_dot_product_attention, which never holds the P x P matrix.",
        "",
        table(["block", "stage", "C x T x H x W", "cell ms (1 thr)", "ref ms (1 thr)", "ratio (1 thr)",
               "cell ms (2 thr)", "ref ms (2 thr)", "ratio (2 thr)", "cell peak MiB", "ref peak MiB",
               "memory ratio"], rows),
    ]
    if args.quick:
        body.insert(0, "**Quick run: quarter-size clips, not ResNet-26's sizes.**\n")
    if notes:
        body += ["", *notes]

    if not args.quick:
        channels, clip = PAPER_EXAMPLE
        positions = clip[0] * clip[1] * clip[2]
        inner = channels // 4
        results = measure(block="double_attention", impls=("cell", "reference", "right"), channels=channels,
                          clip=clip, batch=1, threads=2, repeat=1, limit_gb=limit)
        print("paper example", results, flush=True)
        paper_rows = []
        for impl, label in (("cell", "A^2 cell (left association, Eq. 6)"),
                            ("reference", "reference block, left association (Eq. 6)"),
                            ("right", "reference block, right association (Eq. 7)")):
            result = results[impl]
            measured = megabytes(result) if "peak_bytes" in result else f"not measured: {why_not(result)}"
            paper_rows.append([label, measured, ms(result)])
        body += [
            "",
            f"At the A^2 paper's example size (C = {channels}, 32 frames of 28x28, batch 1; m = n = {inner}): "
            "peak extra memory of a forward+backward pass (1 thread) and its time (2 threads, one pass). For scale: "
            f"the input X is {channels * positions * 4 / MIB:,.0f} MiB and each of phi(X), theta(X), rho(X) is "
            f"{inner * positions * 4 / MIB:,.0f} MiB; the left association's first product G = A B^T is m x n = "
            f"{inner * inner * 4 / MIB:.2f} MiB; the right association's B^T V is (THW)^2 = {positions}^2 floats = "
            f"{positions ** 2 * 4 / GIB:.2f} GiB ({positions ** 2 * 4 / 1e9:.1f} GB, the paper's 'more than 2GB'), "
            "and its backward pass needs that matrix's gradient too.",
            "",
            table(["implementation", "peak extra MiB", "ms"], paper_rows),
        ]
    load = os.getloadavg()
    body += ["", f"Machine load average (1, 5, 15 min) at the end of the run: {load[0]:.1f}, {load[1]:.1f}, "
                 f"{load[2]:.1f} on {os.cpu_count()} cores (a shared machine: timings are noisy)."]
    write_section("cell_speed", "Cell speed and memory (non_local, double_attention)", "\n".join(body))


if __name__ == "__main__":
    main()
