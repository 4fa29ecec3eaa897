"""Trial speed (issue 16): seconds per trial before and after the frozen-front feature cache and the validation
subset, the flop utilisation of what still runs, a trial on a busy machine, and the quick-start search.

Sections of RESULTS.md written by this script (one run, side by side):
- `trial_speed`: median wall and CPU seconds of one single-threaded trial, before (`feature_cache: false`,
  `validation_subset: 0`: every trial runs the frozen front on every clip and validates the whole split every epoch)
  and after (the defaults), for the backbone alone, non_local, double_attention and the random cells of
  benchmarks/proxy_signal.py, each cell's two trials run back to back so that load changes hit both alike; plus the
  largest difference in final validation top-1 between the two paths (the reward must not change);
- the model FLOP utilisation of one training step of the part that still runs (the cell and the layers after it,
  from cached features) against a square GEMM timed round-robin with it, one thread;
- `attnas evaluate double_attention --config <quick-start>` with another process keeping one core busy: OpenMP's
  spinning wait policy (the old behaviour) against the sleeping one attnas now sets, and pinned to one core;
- the quick-start search (`attnas search experiments/configs/quickstart.yaml`) before and after: wall time, best cell.

    python -m benchmarks.trial_speed [--quick]

`--quick` shrinks the data and the cell count to check that the script runs (its figures mean nothing).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from scipy.stats import spearmanr
from torch.utils.flop_counter import FlopCounterMode

from attnas.evaluators import DataConfig, ProxyConfig, ProxyEvaluator
from attnas.evaluators.features import forward_from, trial_inputs
from attnas.search_space import CellSpec
from benchmarks.proxy_mfu import round_robin
from benchmarks.proxy_signal import random_cells
from benchmarks.results import table, write_section

QUICKSTART = Path("experiments/configs/quickstart.yaml")
BEFORE = {"feature_cache": False, "validation_subset": 0}
REFERENCES = ("none", "non_local", "double_attention")


def base_config(quick: bool, cache_dir: str | None) -> ProxyConfig:
    """The default proxy (what the quick-start runs), single-threaded; tiny data with `quick`."""
    data = DataConfig(cache_dir=cache_dir)
    if quick:
        data = replace(data, train_size=128, validation_size=64, test_size=16)
    return ProxyConfig(data=data, threads=1, device="cpu", **({"epochs": 2, "pretrain_epochs": 1} if quick else {}))


def trial_times(base: ProxyConfig, cells: list[tuple[str, object]]) -> tuple[str, dict]:
    """Before/after trials of every cell, back to back; the section's table and the raw rows."""
    before, after = replace(base, **BEFORE), base
    started = time.perf_counter()
    ProxyEvaluator(base).pretrained_backbone()
    pretrain_s = time.perf_counter() - started
    first = ProxyEvaluator(after).evaluate(None)  # builds this machine's feature cache
    rows = []
    for label, cell in cells:
        old = ProxyEvaluator(before).evaluate(cell)
        new = ProxyEvaluator(after).evaluate(cell)
        if old.status != "ok" or new.status != "ok":
            raise RuntimeError(f"{label}: {old.reason or new.reason}")
        rows.append({"label": label, "before": old, "after": new})
        print(f"{label:<18} before {old.wall_time:5.1f}s/{old.cpu_time:5.1f}s  after {new.wall_time:5.1f}s/"
              f"{new.cpu_time:5.1f}s  top1 {old.top1:.4f} {new.top1:.4f}  {new.feature_path}", flush=True)

    def group(name: str, selected: list[dict]) -> list:
        med = {f"{when}_{kind}": statistics.median(getattr(r[when], kind) for r in selected)
               for when in ("before", "after") for kind in ("wall_time", "cpu_time")}
        delta = max(abs(r["before"].top1 - r["after"].top1) for r in selected)
        return [name, len(selected), f"{med['before_wall_time']:.2f}", f"{med['before_cpu_time']:.2f}",
                f"{med['after_wall_time']:.2f}", f"{med['after_cpu_time']:.2f}",
                f"{med['before_cpu_time'] / med['after_cpu_time']:.2f}x", f"{delta:.4f}"]

    random_rows = [r for r in rows if r["label"] not in REFERENCES]
    lines = [group(label, [r for r in rows if r["label"] == label]) for label in REFERENCES]
    if random_rows:
        lines.append(group("random cells", random_rows))
    lines.append(group("all", rows))
    agreement = []
    for epoch in range(1, base.epochs):  # what ASHA sees: the subset's top-1 against the whole split's
        subset = [r["after"].curve[epoch - 1]["top1"] for r in rows]
        whole = [r["before"].curve[epoch - 1]["top1"] for r in rows]
        rho = spearmanr(subset, whole).statistic if len(rows) > 2 else float("nan")
        gap = max(abs(a - b) for a, b in zip(subset, whole))
        agreement.append([epoch, f"{rho:.2f}", f"{100 * gap:.1f}"])
    phases = sorted({k for r in rows for k in r["after"].times})
    phase_rows = [[when] + [f"{statistics.median(r[when].times.get(k, 0.0) for r in rows):.2f}" for k in phases]
                  for when in ("before", "after")]
    body = (f"Settings: `ProxyConfig()` defaults ({base.data.train_size} train / {base.data.validation_size} "
            f"validation clips, {base.epochs} epochs, batch {base.batch_size}, cells at {', '.join(base.at)}), one "
            f"thread per trial, trials run one at a time in one process. Before: {BEFORE}; after: the defaults "
            f"(feature cache, validation subset of {base.validation_subset} clips for epochs 1-{base.epochs - 1}). "
            f"Once per machine (not in the trial times): pretraining the backbone {pretrain_s:.1f} s; the feature "
            f"cache is built by the first trial ({first.times.get('features', 0.0):.1f} s of its "
            f"{first.wall_time:.1f} s).\n\n"
            + table(["cells", "n", "before wall s", "before CPU s", "after wall s", "after CPU s",
                     "speed-up (CPU)", "max abs diff of final top-1"], lines)
            + "\n\nMedian seconds per phase of a trial:\n\n" + table(["path", *phases], phase_rows)
            + f"\n\nThe validation subset ({base.validation_subset} of {base.data.validation_size} clips) against "
              "the whole split at the intermediate epochs ASHA decides on, over the same cells (the two paths train "
              "identically, so the curves differ only in what is scored):\n\n"
            + table(["epoch", "Spearman (subset vs whole split)", "largest gap, points of top-1"], agreement))
    return body, {"rows": rows}


def tail_utilisation(base: ProxyConfig, repeats: int) -> str:
    """MFU of one training step from cached features (cell and later layers) and of the whole step from clips."""
    torch.set_num_threads(1)
    evaluator = ProxyEvaluator(base)
    splits = evaluator.splits()
    state = evaluator.pretrained_backbone()
    from attnas.evaluators.pretrained import freeze_front, train_mode

    functions, flops, inputs_of = {}, {}, {}
    batch = base.batch_size
    labels = torch.randint(0, splits.num_classes, (batch,))
    for cell in REFERENCES:
        model = evaluator.build_model(cell, splits.num_classes, splits.clip_shape, backbone_state=state)
        frozen = freeze_front(model, base, splits.clip_shape)
        inputs = trial_inputs(base, model, frozen, splits, torch.device("cpu"), test=False)
        x, _ = inputs.tensors(inputs.splits.train, torch.arange(batch).numpy(), torch.device("cpu"))
        clips = torch.randn(batch, *splits.clip_shape)
        train_mode(model, frozen)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        for name, run in ((f"{cell} (cell and after)", lambda m=model, x=x: forward_from(m, inputs.start, x)),
                          (f"{cell} (whole model)", lambda m=model, c=clips: m(c))):
            with FlopCounterMode(display=False) as counter:
                F.cross_entropy(run(), labels).backward()
            model.zero_grad(set_to_none=True)
            flops[name] = counter.get_total_flops()

            def step(run=run, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(run(), labels).backward()
                optimizer.step()

            functions[name] = step
        inputs_of[cell] = inputs.start
    n = max(64, round((statistics.median(flops.values()) / 2) ** (1 / 3)))
    a, b = torch.randn(n, n), torch.randn(n, n)
    functions["gemm"] = lambda: torch.mm(a, b)
    seconds = round_robin(functions, repeats)
    gemm = 2 * n ** 3 / seconds["gemm"] / 1e9
    rows = [[name, f"{flops[name] / 1e9:.3f}", f"{seconds[name] * 1e3:.1f}", f"{flops[name] / seconds[name] / 1e9:.1f}",
             f"{100 * flops[name] / seconds[name] / 1e9 / gemm:.0f} %"] for name in flops]
    return (f"One training step (forward, cross-entropy, backward, AdamW) of a batch of {batch}, one thread; FLOPs "
            f"counted by FlopCounterMode; the cached path enters the model at `{inputs_of['none']}`. GEMM: square "
            f"torch.mm, n={n}, {gemm:.1f} GFLOP/s, timed round-robin with the steps (median of {repeats}).\n\n"
            + table(["step", "GFLOP / step", "ms / step", "GFLOP/s", "MFU"], rows))


def busy_machine(config_path: Path, quick: bool) -> str:
    """`attnas evaluate double_attention` quiet, and with a spinning process holding one core, per wait policy."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    command = [sys.executable, "-m", "attnas.experiments.cli", "evaluate", "double_attention", "--config",
               str(config_path)]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)  # warm: data, backbone, features
    cases = [("quiet machine, 2 threads (default)", False, {}, []),
             ("one core busy, 2 threads, OMP_WAIT_POLICY=ACTIVE (before)", True, {"OMP_WAIT_POLICY": "ACTIVE"}, []),
             ("one core busy, 2 threads, default (PASSIVE)", True, {}, []),
             ("one core busy, pinned to one core (taskset -c 0)", True, {}, ["taskset", "-c", "0"])]
    rows = []
    for label, busy, extra, prefix in cases:
        spinner = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None)
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(prefix + command, check=True, env={**env, **extra}, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        rows.append([label, f"{wall:.1f}", f"{cpu:.1f}"])
        print(label, f"{wall:.1f}s", flush=True)
    return (f"`attnas evaluate double_attention --config {config_path if quick else QUICKSTART}` in a fresh "
            "process, caches warm; \"busy\": a `python -c 'while True: pass'` process runs alongside. CPU s = user + "
            "system seconds of the evaluate process (the spinner excluded).\n\n"
            + table(["case", "wall s", "CPU s"], rows))


def quickstart_search(folder: Path, quick: bool) -> str:
    """The quick-start search with the old path and with the new, each in a fresh run folder."""
    data = yaml.safe_load(QUICKSTART.read_text())
    if quick:
        data["budget"] = {"trials": 2}
        data["evaluator"].update(epochs=1, pretrain_epochs=1, data={"train_size": 128, "validation_size": 64,
                                                                  "cache_dir": str(folder / "cache")})
    rows = []
    for label, changes in (("before", BEFORE), ("after", {})):
        path = folder / label / "quickstart.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump({**data, "evaluator": {**data["evaluator"], **changes}}))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "attnas.experiments.cli", "search", str(path), "--runs-dir",
                        str(folder / label / "runs"), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        from attnas.experiments.run_folder import open_run

        history = open_run(folder / label / "runs" / "quickstart").history()
        records = history.trials()
        best = history.best(1)[0]
        states = {s: sum(1 for r in records if r.state == s) for s in ("complete", "pruned", "failed")}
        rows.append([label, f"{wall / 60:.2f}", len(records), states["complete"], states["pruned"], states["failed"],
                     f"{best.hash} (trial {best.number})", f"{best.value:.4f}"])
    return (f"`attnas search {QUICKSTART}` as shipped (after) and with {BEFORE} added to its evaluator (before), "
            "each in a fresh run folder, caches warm.\n\n"
            + table(["path", "wall min", "trials", "complete", "pruned", "failed", "best cell", "best top-1"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data, 2 random cells: checks the script runs")
    parser.add_argument("--cells", type=int, default=None, help="random cells (default 20, quick 2)")
    parser.add_argument("--no-search", action="store_true", help="skip the two quick-start searches")
    args = parser.parse_args()
    count = args.cells if args.cells is not None else (2 if args.quick else 20)
    with tempfile.TemporaryDirectory(prefix="attnas-trial-speed-") as work:
        folder = Path(work)
        # the quick run gets its own cache, so that tiny data never land in the machine's cache
        base = base_config(args.quick, str(folder / "cache") if args.quick else None)
        cells = [(name, name) for name in REFERENCES]
        cells += [(h[:8], CellSpec.from_dict(spec)) for h, spec in random_cells(count)]
        sections = []
        body, _ = trial_times(base, cells)
        sections.append(("Seconds per trial, before and after", body))
        sections.append(("Flop utilisation of the step that still runs", tail_utilisation(base, 5 if args.quick
                                                                                          else 30)))
        config_path = QUICKSTART
        if args.quick:
            config_path = folder / "quick.yaml"
            data = yaml.safe_load(QUICKSTART.read_text())
            data["evaluator"].update(epochs=1, pretrain_epochs=1,
                                     data={"train_size": 128, "validation_size": 64, "cache_dir": str(folder / "c")})
            config_path.write_text(yaml.safe_dump(data))
        sections.append(("A trial on a busy machine", busy_machine(config_path, args.quick)))
        if not args.no_search:
            sections.append(("The quick-start search", quickstart_search(folder / "search", args.quick)))
    load = os.getloadavg()[0]
    body = "\n\n".join(f"### {title}\n\n{text}" for title, text in sections)
    body += f"\n\nMachine load (1-minute load average, {os.cpu_count()} cores) at the end of the run: {load:.1f}."
    write_section("trial_speed", "Trial speed: frozen-front feature cache, validation subset, threads", body)


if __name__ == "__main__":
    main()
