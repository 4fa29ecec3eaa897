"""Differentiable search (issue 8), written to RESULTS.md section "differentiable_search".

1. Cost of the supernet at the proxy settings (`ProxyConfig()`: quick-start proxy I3D, clips 3x16x16x16, batch 32,
   cell after conv2:0, one thread): seconds per search step (one architecture step on a validation batch plus one
   weight step on a train batch) and peak resident memory of a process that builds the model and takes the steps,
   for the tiny, small and default spaces, next to one plain proxy training step.
2. Ground truth on the tiny space (experiments/configs/spaces/tiny.yaml, 13 cells): every cell scored by the proxy
   evaluator with two seeds (and the backbone alone, for reference).
3. The differentiable search with several seeds on the same proxy task: how often its derived cell is the best cell,
   or within the seed spread of it, and its cost (search + one re-training of the derived cell) against random
   search and regularized evolution replayed on the exhaustive table until they propose a cell at least as good.

Trials run single-threaded in `--workers` processes; raw results are kept in runs/differentiable_search/ (one JSON
line per job, keyed by the settings), so an interrupted run continues where it stopped.

    python benchmarks/differentiable_search.py            # the full run
    python benchmarks/differentiable_search.py --quick    # tiny data and fewer seeds, for development
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.job_pool import job_key, run_jobs  # noqa: E402
from benchmarks.results import table, write_section  # noqa: E402
from attnas.evaluators.config import DataConfig, ProxyConfig  # noqa: E402
from attnas.search_space import CellSpec, load_space, unique_cells  # noqa: E402

RUNS = ROOT / "runs" / "differentiable_search"
GROUND_TRUTH_SEEDS = (0, 1)
COSTS = [("none", "softmax"), ("tiny", "softmax"), ("small", "softmax"), ("default", "softmax"),
         ("small", "gumbel"), ("default", "gumbel")]


def settings(quick: bool) -> dict:
    """The proxy task of parts 2 and 3, and the search settings."""
    if quick:
        proxy = ProxyConfig(data=DataConfig(train_size=200, validation_size=100, test_size=50), epochs=1,
                            threads=1, measure_latency=False)
        return {"proxy": proxy, "search_seeds": (0, 1), "variants": {"softmax": {}, "gumbel": {"sampling": "gumbel"}}}
    # quick-start proxy and task, with 1500 train / 500 validation clips so that 26 trials fit this machine
    proxy = ProxyConfig(data=DataConfig(train_size=1500, validation_size=500, test_size=100), epochs=3,
                        threads=1, measure_latency=False)
    return {"proxy": proxy, "search_seeds": (0, 1, 2, 3),
            "variants": {"softmax": {}, "gumbel": {"sampling": "gumbel"}}}


# ------------------------------------------------------------------------------------------------ the jobs
def _trial_job(job: dict) -> dict:
    import torch

    from attnas.evaluators.proxy import ProxyEvaluator

    torch.set_num_threads(1)
    proxy = ProxyConfig.from_dict(job["proxy"])
    proxy = replace(proxy, seed=job["seed"], threads=1)
    cell = None if job["cell"] == "none" else CellSpec.from_dict(job["cell"])
    result = ProxyEvaluator(proxy).evaluate(cell)
    return {"key": job["key"], "kind": "trial", "hash": "none" if cell is None else cell.hash, "seed": job["seed"],
            "status": result.status, "reason": result.reason, "top1": result.top1, "wall_time": result.wall_time,
            "cpu_time": result.cpu_time}


def _search_job(job: dict) -> dict:
    import torch

    from attnas.evaluators.differentiable import DifferentiableConfig, DifferentiableSearch

    torch.set_num_threads(1)
    proxy = replace(ProxyConfig.from_dict(job["proxy"]), seed=job["seed"], threads=1)
    start, cpu = time.perf_counter(), time.process_time()
    epochs = []
    for epoch in DifferentiableSearch(proxy, DifferentiableConfig(**job["search"]), load_space("tiny")).epochs():
        epochs.append({"epoch": epoch.epoch, "hash": epoch.cell.hash, "metrics": epoch.metrics,
                       "weights": epoch.weights})
    return {"key": job["key"], "kind": "search", "method": job["method"], "seed": job["seed"], "epochs": epochs,
            "wall_time": time.perf_counter() - start, "cpu_time": time.process_time() - cpu}


def _cost_job(job: dict) -> dict:
    """Seconds per step and peak RSS of one fresh process (spawned) that builds the model and steps it."""
    import torch

    from attnas.evaluators.differentiable import DifferentiableConfig, DifferentiableSearch
    from attnas.evaluators.proxy import ProxyEvaluator, to_tensors

    torch.set_num_threads(1)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    proxy = ProxyConfig(threads=1)
    splits = ProxyEvaluator(proxy).splits()
    batch = np.arange(proxy.batch_size)
    x, y = to_tensors(splits.train, batch, torch.device("cpu"))
    data_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if job["space"] == "none":
        model = ProxyEvaluator(proxy).build_model(None, splits.num_classes, splits.clip_shape)
        params = [list(model.parameters())]
        arch = []
    else:
        search = DifferentiableSearch(proxy, DifferentiableConfig(), load_space(job["space"]))
        model = search.build(splits.num_classes, splits.clip_shape)
        from attnas.cells.supernet import supernet_cells

        arch = [p for c in supernet_cells(model) for p in c.architecture_parameters()]
        for cell in supernet_cells(model):
            cell.gumbel_tau = 1.0 if job["sampling"] == "gumbel" else None
        ids = {id(p) for p in arch}
        params = [[p for p in model.parameters() if id(p) not in ids]]
    weight_opt = torch.optim.AdamW(params[0], lr=1e-3)
    arch_opt = torch.optim.Adam(arch, lr=3e-3) if arch else None
    model.train()
    times = []
    for step in range(job["steps"]):
        start = time.perf_counter()
        if arch_opt is not None:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            arch_opt.zero_grad()
            loss.backward()
            arch_opt.step()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        weight_opt.zero_grad()
        loss.backward()
        weight_opt.step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"key": job["key"], "space": job["space"], "sampling": job["sampling"],
            "step_s": statistics.median(times[1:] or times), "peak_mb": peak,
            "model_mb": peak - data_rss, "base_mb": base, "params": sum(p.numel() for p in model.parameters()),
            "modules": sum(1 for _ in model.modules())}


def _job(job: dict) -> dict:
    return _search_job(job) if job["kind"] == "search" else _trial_job(job)


def _describe_entry(entry: dict) -> str:
    return (f"{entry['kind']} {entry.get('hash', entry.get('method', ''))} seed {entry['seed']}: "
            f"{entry.get('top1', '')} ({entry['wall_time']:.0f} s)")


# ------------------------------------------------------------------------------------------ the analysis
def replay(controller: str, cells: list[CellSpec], score: dict[str, float], target: float, seed: int) -> int:
    """Trials a controller needs, replayed on the table, until it proposes a cell scoring at least `target`."""
    from attnas.controllers import create_controller

    space = load_space("tiny")
    extra = {"population_size": 4, "sample_size": 2} if controller == "evolution" else {}
    agent = create_controller(controller, space=space, seed=seed, **extra)
    for trial in range(1, len(cells) + 1):
        cell = agent.propose(trial)
        value = score[cell.hash]
        agent.observe(trial, cell, {"accuracy": value}, "complete")
        if value >= target - 1e-12:
            return trial
    raise RuntimeError("the controller proposed every cell without reaching the target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and fewer seeds (development)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replays", type=int, default=50, help="controller seeds replayed on the table")
    parser.add_argument("--fresh-costs", action="store_true", help="re-measure the supernet costs even if stored")
    args = parser.parse_args()
    config = settings(args.quick)
    RUNS.mkdir(parents=True, exist_ok=True)
    proxy = config["proxy"]
    proxy_data = proxy.to_dict()

    # 1. supernet cost at the proxy settings, one fresh process per space
    print("supernet cost at the proxy settings", flush=True)
    cost_store = RUNS / "costs.jsonl"
    cost_jobs = [{"key": job_key("cost", s, m, 3 if args.quick else 5), "space": s, "sampling": m,
                  "steps": 3 if args.quick else 5} for s, m in COSTS]
    cached = {}
    if cost_store.exists() and not args.fresh_costs:
        cached = {e["key"]: e for e in map(json.loads, cost_store.read_text().splitlines())}
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        fresh = pool.map(_cost_job, [j for j in cost_jobs if j["key"] not in cached], chunksize=1)
    with cost_store.open("a") as out:
        for entry in fresh:
            cached[entry["key"]] = entry
            out.write(json.dumps(entry) + "\n")
    costs = [cached[j["key"]] for j in cost_jobs]

    # 2. the exhaustive table
    space = load_space("tiny")
    cells = unique_cells(space.enumerate())
    print(f"ground truth: {len(cells)} cells x {len(GROUND_TRUTH_SEEDS)} seeds", flush=True)
    jobs = [{"key": job_key("trial", proxy_data, cell if cell == "none" else cell.hash, seed), "proxy": proxy_data,
             "kind": "trial",
             "cell": cell if cell == "none" else cell.to_dict(), "seed": seed}
            for cell in ["none", *cells] for seed in GROUND_TRUTH_SEEDS]
    # 3. the searches (queued first, with the trials, so both workers stay busy)
    search_jobs = [{"key": job_key("search", proxy_data, variant, seed), "proxy": proxy_data, "kind": "search",
                    "search": variant, "method": method, "seed": seed}
                   for method, variant in config["variants"].items() for seed in config["search_seeds"]]
    results = run_jobs(_job, search_jobs + jobs, workers=args.workers, store=RUNS / "jobs.jsonl",
                       describe=_describe_entry)
    trials = {job["key"]: results[job["key"]] for job in jobs}
    searches = {job["key"]: results[job["key"]] for job in search_jobs}

    table_rows, score, times = [], {}, []
    by_hash: dict[str, list[dict]] = {}
    for entry in trials.values():
        by_hash.setdefault(entry["hash"], []).append(entry)
    for cell in cells:
        runs = by_hash[cell.hash]
        score[cell.hash] = statistics.mean(r["top1"] for r in runs)
        times += [r["cpu_time"] for r in runs]
    spreads = [abs(by_hash[c.hash][0]["top1"] - by_hash[c.hash][1]["top1"]) for c in cells]
    spread = statistics.mean(spreads)
    ranked = sorted(cells, key=lambda c: -score[c.hash])
    best = ranked[0]
    trial_cpu = statistics.mean(times)
    close_cells = sum(1 for c in cells if score[c.hash] >= score[best.hash] - spread)
    trial_wall = statistics.mean(r["wall_time"] for r in trials.values())
    none_score = statistics.mean(r["top1"] for r in by_hash["none"])
    for rank, cell in enumerate(ranked, start=1):
        runs = sorted(by_hash[cell.hash], key=lambda r: r["seed"])
        table_rows.append([rank, cell.hash, _describe(cell), *[f"{r['top1']:.3f}" for r in runs],
                           f"{score[cell.hash]:.3f}"])

    search_rows, summary_rows = [], []
    for method in config["variants"]:
        rows, summary = _analyse([e for e in searches.values() if e["method"] == method], method, cells, score,
                                 ranked, best, spread, trial_cpu, trial_wall, args.replays)
        search_rows += rows
        summary_rows.append(summary)

    cost_rows = [[c["space"] if c["space"] != "none" else "none (plain proxy step)",
                  "-" if c["space"] == "none" else c["sampling"], f"{c['params']:,}",
                  f"{c['step_s'] * 1000:.0f}", f"{c['peak_mb']:.0f}", f"{c['model_mb']:.0f}"] for c in costs]
    plain = next(c for c in costs if c["space"] == "none")
    body = f"""
Settings of parts 2-3: the default task and quick-start proxy (`ProxyConfig`) with {proxy.data.train_size} train /
{proxy.data.validation_size} validation clips, {proxy.epochs} epochs, batch {proxy.batch_size}, one thread per trial,
{args.workers} worker processes. The searches: `DifferentiableConfig()` defaults (first-order, arch_lr 1e-2,
{proxy.epochs} epochs, an architecture step on a validation batch before every weight step), with softmax mixing and
with Gumbel sampling.
The machine was shared with other jobs (load average well above its 2 cores while this ran), so CPU seconds
(single-threaded, per process) are the comparable cost; wall seconds are given for the record.

**Supernet cost at the proxy settings** (`ProxyConfig()`: 2000-clip task, batch 32, supernet after conv2:0; one
search step = architecture step + weight step; the plain row is one weight step without a cell; median of the
steps after the first; peak RSS of a fresh process that loaded the data, built the model and took the steps;
"model + steps" = peak minus the RSS after loading the data):

{table(["space", "forward", "params", "ms / step", "peak RSS MB", "model + steps MB"], cost_rows)}

Every space fits the machine (24 GiB) with a wide margin. A default-space search step costs
{_cost(costs, 'default', 'softmax') / plain['step_s']:.0f}x a plain proxy step with softmax mixing (every candidate
on every combination of sources: {_cost(costs, "default", "softmax", "modules")} nn.Modules in the model), and
{_cost(costs, 'default', 'gumbel') / plain['step_s']:.1f}x with Gumbel sampling (one cell per step); the tiny
space {_cost(costs, 'tiny', 'softmax') / plain['step_s']:.1f}x.

**Ground truth** on the tiny space ({len(cells)} cells, two seeds each; backbone alone {none_score:.3f}). Mean
trial: {trial_cpu:.0f} CPU s ({trial_wall:.0f} wall s). Seed spread = mean |seed 0 - seed 1| over the cells =
{spread:.3f}. {close_cells} of the {len(cells)} cells have a mean within that spread of the best one, so a cell picked
at random is the best with probability {1 / len(cells):.2f} and within the spread with {close_cells / len(cells):.2f}:
on this proxy the tiny space's cells are barely separable, and "within spread" is a weak criterion here.

{table(["rank", "cell", "nodes", "top-1 seed 0", "top-1 seed 1", "mean"], table_rows)}

**Differentiable search, {len(config['search_seeds'])} seeds per method** ("softmax": DARTS mixing, "gumbel": GDAS
sampling, both first-order with the default settings and {proxy.epochs} epochs). "within spread" = mean top-1 >= best
- {spread:.3f}. Cost = search + one re-training of the derived cell (the exhaustive table's mean trial). Black-box
columns: trials random search / regularized evolution (population 4, tournament 2) need, replayed on the table
(mean scores) over {args.replays} controller seeds, until they propose a cell at least as good as the one this search
derived, and their CPU seconds (trials x mean trial).

{table(["method", "found best", "within spread", "median CPU s (wall s)", "random: median CPU s",
        "evolution: median CPU s"], summary_rows)}

{table(["method", "seed", "derived cell per epoch", "its mean top-1", "rank", "best?", "search CPU s",
        "search + retrain CPU s", "random: trials (CPU s)", "evolution: trials (CPU s)"], search_rows)}

Exhaustive evaluation of the space with one seed: {len(cells) * trial_cpu:.0f} CPU s.
"""
    write_section("differentiable_search", "Differentiable search (supernet cost, tiny-space ground truth)"
                  + (" [--quick]" if args.quick else ""), body)
    print(body)


def _cost(costs: list[dict], space: str, sampling: str, field: str = "step_s"):
    return next(c[field] for c in costs if c["space"] == space and c["sampling"] == sampling)


def _analyse(entries, method, cells, score, ranked, best, spread, trial_cpu, trial_wall, replays_count):
    """Rows per search, and one summary row, for the searches of one method."""
    rows, found, within = [], 0, 0
    darts_cpu, darts_wall, replays = [], [], {"random": [], "evolution": []}
    for entry in sorted(entries, key=lambda e: e["seed"]):
        final = entry["epochs"][-1]["hash"]
        value = score[final]
        exact = final == best.hash
        close = value >= score[best.hash] - spread
        found += exact
        within += close
        cpu = entry["cpu_time"] + trial_cpu  # the search, then one re-training of the derived cell
        darts_cpu.append(cpu)
        darts_wall.append(entry["wall_time"] + trial_wall)
        needed = {name: [replay(name, cells, score, value, s) for s in range(replays_count)] for name in replays}
        for name in replays:
            replays[name].append(statistics.mean(needed[name]) * trial_cpu)
        rows.append([method, entry["seed"], " -> ".join(e["hash"][:8] for e in entry["epochs"]),
                     f"{value:.3f}", f"{ranked.index(next(c for c in cells if c.hash == final)) + 1}",
                     "yes" if exact else ("within spread" if close else "no"),
                     f"{entry['cpu_time']:.0f}", f"{cpu:.0f}",
                     f"{statistics.mean(needed['random']):.1f} ({replays['random'][-1]:.0f})",
                     f"{statistics.mean(needed['evolution']):.1f} ({replays['evolution'][-1]:.0f})"])

    n = len(entries)
    summary = [method, f"{found}/{n}", f"{within}/{n}",
               f"{statistics.median(darts_cpu):.0f} ({statistics.median(darts_wall):.0f})",
               f"{statistics.median(replays['random']):.0f}", f"{statistics.median(replays['evolution']):.0f}"]
    return rows, summary


def _describe(cell: CellSpec) -> str:
    parts = []
    for node in cell.nodes:
        sources = ",".join(src for _, src in node.inputs)
        parts.append(f"{node.name}={node.op.replace('_attention', '')}/{node.attr_map.get('dim', '')}({sources})")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
