"""The proof (issue 9): do attnas searches find attention cells better than non-local and A^2 blocks, on this machine,
in miniature? Written to RESULTS.md section "search_study" (and "search_study_quick" for --quick).

1. References on the search proxy: the backbone alone, non_local, double_attention, squeeze_excitation and cbam,
   trained like any trial at each search seed (validation top-1): the score a search must reach.
2. Searches on the default task and proxy (`ProxyConfig()`) over the default space, through the real CLI
   (`attnas search`, Ray Tune, two trials at a time, no early stopping so every evaluation is a whole one): random,
   evolution, bayesian and tpe at the same trial budget, each at several seeds (search seed = controller seed =
   the evaluator's training seed); the differentiable search (Gumbel sampling, one job on both cores) at the same
   wall time as the black-box searches took.
3. The best cell the black-box searches found (highest validation top-1), the differentiable search's cell, and the
   references, re-trained as proxy trials at fresh seeds (none of them a search seed) and scored on the held-out test
   split: mean and spread of top-1, multiply-adds and parameters.
4. Transfer: the same cells in a narrowed 3-D ResNet-26 (A^2-Nets Table 1 with every width x 1/8, 32x32 clips) on a
   task nobody searched on (`reappear`: does the last object match the first, with a distractor between).
5. A cost-aware search (regularized evolution, multiply-adds budget = half of non_local's extra cost over the
   backbone) and the accuracy / multiply-adds Pareto front of everything measured, against the references.
6. Where the claims (a searched cell beats non-local and A^2; A^2 beats non-local for less; transfer) held, where they
   did not, and what that suggests, decided from the numbers above.

Run folders (history databases, Ray trial folders) stay in runs/search_study/<mode>/, so every search can be opened
with `attnas dashboard` afterwards, and an interrupted study continues where it stopped.

    make study                                        # the full study, about 60 minutes on 2 cores
    python -m benchmarks.search_study --quick         # about 18 minutes: one seed, 8 trials per search
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.job_pool import job_key, proxy_trial, run_jobs  # noqa: E402
from benchmarks.results import table, write_section  # noqa: E402
from attnas.evaluators import DataConfig, ProxyConfig  # noqa: E402
from attnas.search_space import CellSpec, load_zoo  # noqa: E402

# The black-box controllers with a warm-up of 6 random cells (their defaults, 10, suit budgets of a hundred or more;
# here half of a 20-trial search would be random). random, evolution and bayesian draw the same first 6 cells at a
# seed (common random numbers); tpe's warm-up comes from Optuna's own generator.
CONTROLLERS = {"random": {}, "evolution": {"population_size": 6, "sample_size": 3},
               "bayesian": {"initial_random": 6}, "tpe": {"n_startup_trials": 6}}
REFERENCES = ("none", "non_local", "double_attention", "squeeze_excitation", "cbam")
RELATIONAL = ("non_local", "double_attention")  # the hand-designed cells the searched one must beat
RETRAIN_SEED0 = 100  # re-training seeds start here: never a search seed, so no cell is scored on its lucky seed


@dataclass(frozen=True)
class StudyPlan:
    """How much of each part the study runs."""

    search_seeds: int
    trials: int
    retrain_seeds: int
    transfer_seeds: int
    transfer_train: int
    cost_trials: int
    expected: str
    # the differentiable search: at most this many supernet epochs, for the black-box searches' wall time but at
    # least this many seconds (the tests shrink both; the study's own plans keep these)
    differentiable_epochs: int = 12
    differentiable_min_seconds: float = 30.0


PLANS = {
    "quick": StudyPlan(search_seeds=1, trials=8, retrain_seeds=2, transfer_seeds=2, transfer_train=1000,
                       cost_trials=8, expected="about 18 minutes"),
    "full": StudyPlan(search_seeds=2, trials=20, retrain_seeds=5, transfer_seeds=3, transfer_train=1500,
                      cost_trials=20, expected="about 60 minutes"),
}


def transfer_proxy(plan: StudyPlan) -> ProxyConfig:
    """The narrowed ResNet-26 on `reappear` (16 frames of 32x32; objects 2 frames each at the start, middle and
    end; one colour per class, so only the relation is hard); the cell after conv3's second unit. lr 0.002: at the
    proxy's 0.01 the deeper network's training loss does not move in the budget."""
    data = DataConfig(task="reappear", fields={"frames": 16, "size": 32, "window": 2, "class_colors": True},
                      train_size=plan.transfer_train, validation_size=500, test_size=1000)
    return ProxyConfig(data=data, backbone="resnet26",
                       backbone_args={"width_multiplier": 0.125, "channels_last": True}, at=("conv3:1",),
                       lr=0.002, threads=1)


# ------------------------------------------------------------------------------------------------ the searches
def experiment(name: str, controller: dict, seed: int, *, evaluator: dict, space: str = "default",
               trials: int | None = None, seconds: float | None = None, objective: dict | None = None, cpus: int = 1,
               concurrency: int = 2) -> dict:
    """The experiment file of one search (a plain dict, written as YAML for `attnas search`)."""
    budget = {"trials": trials} if trials else {"time": f"{int(seconds)}s"}
    return {"name": name, "space": space, "controller": controller,
            "objective": objective or {"metric": "accuracy"}, "evaluator": evaluator, "budget": budget,
            "concurrency": concurrency, "resources": {"cpus": cpus}, "early_stopping": {"scheduler": "none"},
            "seed": seed}


def run_search(folder: Path, config: dict) -> dict:
    """Run (or finish) one search through the CLI; returns its trials and wall time (stored beside the run)."""
    from attnas.experiments.cli import main as cli
    from attnas.experiments.run_folder import open_run

    name = config["name"]
    run_dir = folder / name
    timing = folder / "wall_times.json"
    walls = json.loads(timing.read_text()) if timing.exists() else {}
    path = folder / "configs" / f"{name}.yaml"
    text = yaml.safe_dump(config, sort_keys=False)
    def settings(data: dict) -> dict:  # the time budget of a resumed differentiable search may differ a little
        return {k: v for k, v in data.items() if k != "budget"}

    if (run_dir / "run.json").exists() and path.exists():
        recorded, wanted = settings(yaml.safe_load(path.read_text())), settings(yaml.safe_load(text))  # tuples as lists
        changed = sorted(k for k in recorded.keys() | wanted.keys() if recorded.get(k) != wanted.get(k))
        if changed:
            raise SystemExit(f"{run_dir} holds a search with other {', '.join(changed)} than this study's ({path}); "
                             f"remove {folder} to start the study over")
    log_path = folder / "searches.log"  # what `attnas search` prints, kept out of the study's own output
    with open(log_path, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        if (run_dir / "run.json").exists():
            code = cli(["resume", str(run_dir), "--quiet"])
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            started = time.time()
            code = cli(["search", str(path), "--runs-dir", str(folder), "--quiet"])
            walls[name] = time.time() - started
            timing.write_text(json.dumps(walls, indent=1))
    if code != 0:
        raise SystemExit(f"search {name} failed (exit {code}); see {log_path} and the run folder {run_dir}")
    records = open_run(run_dir).history().trials()
    trials = [{"number": r.number, "state": r.state, "hash": r.hash, "cell": r.cell, "value": r.value,
               "macs": r.values.get("macs"), "params": r.values.get("params"), "seconds": r.values.get("wall_time_s"),
               "phase": r.attrs.get("phase")}
              for r in sorted(records, key=lambda r: r.number)]
    print(f"  {name}: {sum(t['state'] == 'complete' for t in trials)} complete trials in {walls.get(name, 0):.0f} s",
          flush=True)
    return {"name": name, "trials": trials, "wall": walls.get(name)}


def best_so_far(trials: list[dict]) -> list[float]:
    """Best validation top-1 after each evaluation, in the order the controller proposed them."""
    curve, best = [], float("-inf")
    for trial in trials:
        if trial["state"] == "complete" and trial["value"] is not None:
            best = max(best, trial["value"])
        curve.append(best)
    return curve


def evaluations_to_reach(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, value in enumerate(curve) if value >= target), None)


def best_trial(searches: list[dict]) -> dict:
    """The highest validation top-1 of any complete trial (fewer multiply-adds break ties)."""
    complete = [t for s in searches for t in s["trials"] if t["state"] == "complete" and t["value"] is not None]
    return max(complete, key=lambda t: (t["value"], -(t["macs"] or 0)))


# ------------------------------------------------------------------------------------------------ the study
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 8 trials per search (under 20 minutes)")
    parser.add_argument("--workers", type=int, default=2, help="parallel single-threaded re-training processes")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    folder = ROOT / "runs" / "search_study" / mode
    print(f"search study ({mode}: {plan.expected} on 2 cores); run folders in {folder}", flush=True)
    body = run_study(plan, folder, base=ProxyConfig(threads=1), transfer=transfer_proxy(plan), workers=args.workers,
                     space="default")
    write_section("search_study" if mode == "full" else "search_study_quick",
                  f"Search study ({mode}): searched cells against non-local and A^2 blocks", body,
                  reproduce="make study" if mode == "full" else "python -m benchmarks.search_study --quick")
    print(body)


def run_study(plan: StudyPlan, folder: Path, *, base: ProxyConfig, transfer: ProxyConfig, workers: int,
              space: str) -> str:
    """Every part of the study (module docstring) with `base` as the search proxy; returns the report."""
    folder.mkdir(parents=True, exist_ok=True)
    clock = StudyClock(folder / "elapsed.json")
    seeds = list(range(plan.search_seeds))
    from attnas.evaluators.datasets import load_splits

    load_splits(base.data)  # generated once here; every worker and trial memory-maps the cache
    print("1. references on the search proxy (validation top-1 at each search seed)", flush=True)
    reference_jobs = [{"label": name, "cell": None if name == "none" else load_zoo(name).to_dict(), "seed": seed,
                       "proxy": base.to_dict()} for name in REFERENCES for seed in seeds]
    for job in reference_jobs:
        job["key"] = job_key("reference", job["proxy"], job["cell"], job["seed"])
    references = run_jobs(proxy_trial, reference_jobs, workers=workers, store=folder / "trials.jsonl",
                          describe=_describe)
    reference_score = {(j["label"], j["seed"]): references[j["key"]]["top1"] for j in reference_jobs}
    reference_macs = {j["label"]: references[j["key"]]["macs"] for j in reference_jobs}
    target = {seed: max(reference_score[(name, seed)] for name in REFERENCES if name != "none") for seed in seeds}
    clock.save()
    macs_budget = reference_macs["none"] + 0.5 * (reference_macs["non_local"] - reference_macs["none"])

    import ray

    from attnas.experiments.driver import init_ray, quiet_ray

    def search(name: str, controller: dict, seed: int, **budget) -> dict:
        evaluator = {**{k: v for k, v in base.to_dict().items() if k != "threads"}, "seed": seed}
        return run_search(folder, experiment(name, controller, seed, evaluator=evaluator, space=space, **budget))

    quiet_ray()
    owns_ray = not ray.is_initialized()
    init_ray(None)
    try:
        print("2. searches", flush=True)
        searches = {name: [search(f"{name}-s{seed}", {"name": name, **settings}, seed, trials=plan.trials)
                           for seed in seeds]
                    for name, settings in CONTROLLERS.items()}
        differentiable = []
        for seed in seeds:
            wall = statistics.mean(runs[seed]["wall"] for runs in searches.values() if runs[seed]["wall"])
            # the deadline stops the search after an epoch; the re-training of the derived cell comes after it
            seconds = max(plan.differentiable_min_seconds, wall - _median_trial_seconds(searches, seed))
            controller = {"name": "differentiable", "sampling": "gumbel", "epochs": plan.differentiable_epochs,
                          "retrain": True}
            differentiable.append(search(f"differentiable-s{seed}", controller, seed, seconds=seconds, cpus=2,
                                         concurrency=1))
        clock.save()
        print("5. cost-aware search", flush=True)
        cost_aware = search("evolution-macs-s0", {"name": "evolution", **CONTROLLERS["evolution"]}, 0,
                            trials=plan.cost_trials,
                            objective={"metric": "accuracy", "budget": {"macs": macs_budget}})
    finally:
        if owns_ray:
            ray.shutdown()

    best = best_trial([run for runs in searches.values() for run in runs])
    candidates = [("searched", best)]
    if any(t["state"] == "complete" for run in differentiable for t in run["trials"]):
        candidates.append(("differentiable", best_trial(differentiable)))
    feasible = [t for t in cost_aware["trials"] if t["macs"] is not None and t["macs"] <= macs_budget]
    if any(t["state"] == "complete" for t in feasible):
        candidates.append(("cost-aware", best_trial([{"trials": feasible}])))
    found: dict[str, tuple[list[str], dict]] = {}  # a cell found by several searches is trained once
    for label, trial in candidates:
        found.setdefault(trial["hash"], ([], trial["cell"]))[0].append(label)
    cells = {f"{' and '.join(labels)} {cell_hash}": cell for cell_hash, (labels, cell) in found.items()}
    cells.update({name: None if name == "none" else load_zoo(name).to_dict() for name in REFERENCES})

    print("3. re-training on fresh seeds, scored on the test split", flush=True)
    retrain = _retrain(cells, base, plan.retrain_seeds, folder, workers, "retrain")
    clock.save()
    print("4. transfer to a narrowed ResNet-26 on reappear", flush=True)
    transferred = _retrain(cells, transfer, plan.transfer_seeds, folder, workers, "transfer")
    return report(plan, base, seeds, reference_score, reference_macs, target, searches, differentiable, cost_aware,
                  macs_budget, cells, retrain, transferred, clock.save())


class StudyClock:
    """Seconds the study has run, summed over interrupted and resumed runs (kept in a small JSON file)."""

    def __init__(self, path: Path):
        self.path = path
        self.before = json.loads(path.read_text())["seconds"] if path.exists() else 0.0
        self.started = time.time()

    def save(self) -> float:
        total = self.before + time.time() - self.started
        self.path.write_text(json.dumps({"seconds": total}))
        return total


def _median_trial_seconds(searches: dict, seed: int) -> float:
    seconds = [t["seconds"] for runs in searches.values() for t in runs[seed]["trials"] if t["seconds"]]
    return statistics.median(seconds) if seconds else 0.0


def _retrain(cells: dict, proxy: ProxyConfig, count: int, folder: Path, workers: int, kind: str) -> dict:
    """{label: [result per seed]} of every cell trained at seeds RETRAIN_SEED0.. and scored on the test split."""
    jobs = [{"label": label, "cell": cell, "seed": RETRAIN_SEED0 + i, "proxy": proxy.to_dict(), "test": True}
            for label, cell in cells.items() for i in range(count)]
    for job in jobs:
        job["key"] = job_key(kind, job["proxy"], job["cell"], job["seed"])
    done = run_jobs(proxy_trial, jobs, workers=workers, store=folder / "trials.jsonl", describe=_describe)
    out: dict[str, list[dict]] = {}
    for job in jobs:
        out.setdefault(job["label"], []).append(done[job["key"]])
    return out


def _describe(entry: dict) -> str:
    return (f"{entry['label'][:28]:<28} seed {entry['seed']:>3} {entry['status']} top1={entry['top1']} "
            f"test={entry.get('test_top1')} ({entry['wall_time']:.0f} s)")


# ------------------------------------------------------------------------------------------------ the report
def _display(label: str) -> str:
    """A row label: searched cells in code style, the backbone alone by that name rather than its zoo name."""
    return "backbone alone" if label == "none" else f"`{label}`" if " " in label else label


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


class CellScores(NamedTuple):
    """One cell's test top-1 over the seeds it was trained at, and its cost."""

    mean: float
    sd: float
    values: list[float]
    macs: int
    params: int


def _comparison_table(results: dict, cells: dict) -> tuple[str, dict[str, CellScores]]:
    rows, stats = [], {}
    for label, runs in results.items():
        ok = [r for r in runs if r["status"] == "ok" and r["test_top1"] is not None]
        if not ok:
            rows.append([_display(label), "failed", "", "", "", ""])
            continue
        mean, sd = _mean_sd([r["test_top1"] for r in ok])
        stats[label] = CellScores(mean, sd, [r["test_top1"] for r in ok], ok[0]["macs"], ok[0]["params"])
        rows.append([_display(label), f"{100 * mean:.1f} ± {100 * sd:.1f}",
                     " / ".join(_pct(r["test_top1"]) for r in ok),
                     f"{100 * statistics.mean(r['top1'] for r in ok):.1f}", f"{ok[0]['macs'] / 1e6:.2f}",
                     f"{ok[0]['params']:,}"])
    headers = ["cell", "test top-1 mean ± sd", "per seed", "val top-1 mean", "M mult-adds / clip", "params"]
    return table(headers, rows), stats


def _verdicts(stats: dict[str, CellScores], label: str) -> list[str]:
    lines = []
    cell = stats[label]
    for ref in RELATIONAL:
        if ref not in stats:
            continue
        gap = 100 * (cell.mean - stats[ref].mean)
        p = _welch_p(stats, label, ref)
        lines.append(f"- against {ref}: {gap:+.1f} points ({_against_spread(stats, label, ref)} the seed spread "
                     f"{100 * (cell.sd + stats[ref].sd):.1f} = sum of the two sds; Welch p = {p:.3f})"
                     if p is not None else f"- against {ref}: {gap:+.1f} points")
    if "non_local" in stats:
        non_local = stats["non_local"].macs
        lines.append(f"- multiply-adds: {cell.macs / 1e6:.2f} M against non_local's {non_local / 1e6:.2f} M "
                     f"({'no more' if cell.macs <= non_local else 'more'})")
    return lines


def _welch_p(stats: dict[str, CellScores], label: str, ref: str) -> float | None:
    """Welch's t-test p-value of `label`'s per-seed scores against `ref`'s (None with fewer than two seeds)."""
    from scipy.stats import ttest_ind

    values, r_values = stats[label].values, stats[ref].values
    return ttest_ind(values, r_values, equal_var=False).pvalue if len(values) > 1 and len(r_values) > 1 else None


def _against_spread(stats: dict[str, CellScores], label: str, ref: str) -> str:
    """'above', 'below' or 'within': where `label`'s mean lies against `ref`'s, counting a gap larger than the sum of
    the two standard deviations as real."""
    cell, other = stats[label], stats[ref]
    spread = cell.sd + other.sd
    return "above" if cell.mean - other.mean > spread else "below" if other.mean - cell.mean > spread else "within"


def conclusions(searches: dict, seeds: list[int], target: dict, stats: dict[str, CellScores],
                transfer_stats: dict[str, CellScores]) -> list[str]:
    """Section 6: each claim the study tests, whether it held here, and what that suggests (from the numbers)."""
    lines = ["### 6. Where the claims held and where they did not", ""]
    searched = [label for label in stats if label not in REFERENCES]
    winners = [label for label in searched
               if all(_against_spread(stats, label, ref) == "above" for ref in RELATIONAL if ref in stats)
               and "non_local" in stats and stats[label].macs <= stats["non_local"].macs]
    if winners:
        lines.append(f"- AttentionNAS (a searched cell beats non-local, and here A^2 too, beyond the seed spread at no "
                     f"more multiply-adds than non-local): held for {', '.join(f'`{w}`' for w in winners)}.")
    else:
        references = [ref for ref in RELATIONAL if ref in stats]
        gaps = "; ".join(f"`{label}` " + ", ".join(f"{100 * (stats[label].mean - stats[ref].mean):+.1f} against {ref}"
                                                   for ref in references) for label in searched)
        ahead = [label for label in searched if all(stats[label].mean > stats[ref].mean for ref in references)]
        candidates = "".join(
            f" `{label}` is ahead of both on the mean (" +
            ", ".join(f"Welch p = {p:.3f} against {ref}" for ref in references
                      if (p := _welch_p(stats, label, ref)) is not None) +
            "), but not by more than the seed spread" +
            (" and at more multiply-adds than non_local"
             if "non_local" in stats and stats[label].macs > stats["non_local"].macs else "") +
            ": a candidate that more re-training seeds would confirm or refute." for label in ahead)
        lines.append("- AttentionNAS (a searched cell beats non-local and A^2 beyond the seed spread at no more "
                     f"multiply-adds than non-local): did not hold ({gaps} points of test top-1).{candidates} The "
                     "searches choose on one validation score of a 4-epoch proxy whose seed noise is as large as "
                     "the gaps between good cells (see Proxy signal); telling such cells apart needs a less noisy "
                     "reward (`repeats` in the evaluator) and more re-training seeds than an hour on 2 cores allows.")
    if "double_attention" in stats and "non_local" in stats and "none" in stats:
        extra = [stats[name].macs - stats["none"].macs for name in ("double_attention", "non_local")]
        where = _against_spread(stats, "double_attention", "non_local")
        gap = 100 * (stats["double_attention"].mean - stats["non_local"].mean)
        lines.append(f"- A^2-Nets (double attention beats non-local at a fraction of its cost): double_attention is "
                     f"{gap:+.1f} points against non_local ({where} the seed spread) at "
                     f"{100 * extra[0] / extra[1]:.0f}% of non_local's extra multiply-adds over the backbone; "
                     + ("did not hold." if extra[0] >= extra[1] else "held." if where == "above" else
                        "the cost half held, the accuracy half did not." if where == "below" else
                        "the cost half held, the accuracy half was not resolved by these seeds."))
    if transfer_stats:
        learned = [label for label in transfer_stats if label != "none" and "none" in transfer_stats
                   and _against_spread(transfer_stats, label, "none") == "above"]
        lines.append("- Transfer to a narrowed ResNet-26 on `reappear`: " + (
            f"cells beating the backbone alone beyond the seed spread: {', '.join(_display(c) for c in learned)} "
            "(section 4 compares the searched cells with non_local and double_attention there)."
            if learned else
            "no cell, searched or hand-designed, beat the backbone alone beyond the seed spread: the network did "
            "not learn the task's relation in this budget, so this run says nothing about transfer either way. It "
            "needs a longer schedule or a wider network than fits in this study's hour on 2 cores."))
    reached = {name: sum(evaluations_to_reach(best_so_far(run["trials"]), target[seed]) is not None
                         for run, seed in zip(runs, seeds)) for name, runs in searches.items()}
    lines.append("- Controllers: searches that reached the best reference's validation score: " +
                 ", ".join(f"{name} {count}/{len(seeds)}" for name, count in reached.items()) +
                 f". With {len(seeds)} seed(s) and these trial budgets, differences between controllers are within "
                 "what one seed's draw of cells gives; they share their first random cells, so their curves split "
                 "only after those.")
    return lines + [""]


def pareto_front(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The (label, macs, accuracy) points no other point beats on both (fewer or equal macs, higher accuracy)."""
    front, best = [], float("-inf")
    for label, macs, accuracy in sorted(points, key=lambda p: (p[1], -p[2])):
        if accuracy > best:
            front.append((label, macs, accuracy))
            best = accuracy
    return front


def report(plan, base, seeds, reference_score, reference_macs, target, searches, differentiable, cost_aware,
           macs_budget, cells, retrain, transfer, seconds) -> str:
    lines = [
        f"{plan.search_seeds} search seed(s), {plan.trials} trials per search, {plan.retrain_seeds} re-training "
        f"seeds, {plan.transfer_seeds} transfer seeds (`make study`: {PLANS['full'].expected}; `make study-quick`: "
        f"{PLANS['quick'].expected}). The study took {seconds / 60:.0f} minutes on 2 cores (summed over restarts; "
        "parts reused from an interrupted run count once).",
        "",
        f"Search proxy: task `{base.data.task}`, {base.data.train_size} train / "
        f"{base.data.validation_size} validation / {base.data.test_size} test clips, {base.epochs} epochs, "
        f"lr {base.lr}, cell at {list(base.at)}; default space; two one-core trials at a time through "
        "`attnas search` (Ray Tune), no early stopping. Controllers: " +
        "; ".join(f"{name} {settings or '(defaults)'}" for name, settings in CONTROLLERS.items()) +
        " (6 random cells first; random, evolution and bayesian draw the same 6 at a seed).",
        "",
        "### 1-2. Searches: best validation top-1 so far (%), mean over search seeds",
        "",
        "Target: the best reference cell's validation top-1 at the same seed: " +
        ", ".join(f"seed {s}: {_pct(target[s])} ("
                  f"{max((n for n in REFERENCES if n != 'none'), key=lambda n: reference_score[(n, s)])})"
                  for s in seeds) +
        "; the backbone alone: " + ", ".join(_pct(reference_score[("none", s)]) for s in seeds) + ".",
        "",
    ]
    marks = sorted({m for m in (1, 2, 4, 8, 12, 16, 20, plan.trials) if m <= plan.trials})
    rows = []
    for name, runs in searches.items():
        curves = [best_so_far(run["trials"]) for run in runs]
        reach = [evaluations_to_reach(curve, target[seed]) for curve, seed in zip(curves, seeds)]
        row = [name] + [_mean_at(curves, m) for m in marks]
        row += [" / ".join("not reached" if r is None else str(r) for r in reach),
                f"{statistics.mean(run['wall'] for run in runs) / 60:.1f}"]
        rows.append(row)
    for run, seed in zip(differentiable, seeds):
        retrained = [t for t in run["trials"] if t["phase"] == "retrain" and t["state"] == "complete"]
        epochs = sum(1 for t in run["trials"] if t["phase"] != "retrain")
        value = retrained[0]["value"] if retrained else None
        reached = value is not None and value >= target[seed]
        rows.append([f"differentiable (seed {seed}, {epochs} search epochs + re-training)"] +
                     ["" for _ in marks[:-1]] + [_pct(value), "reached" if reached else "not reached",
                                                  f"{(run['wall'] or 0) / 60:.1f}"])
    lines.append(table(["controller"] + [f"after {m}" for m in marks] +
                       ["evaluations to reach the target (per seed)", "wall min"], rows))
    best = best_trial([s for runs in searches.values() for s in runs])
    lines += ["", f"Best cell of the black-box searches: `{best['hash']}` (validation top-1 {_pct(best['value'])}, "
              f"{(best['macs'] or 0) / 1e6:.2f} M multiply-adds): {_describe_cell(best['cell'])}.", ""]

    lines += ["### 3. Re-trained at fresh seeds, test split (top-1 %)", ""]
    text, stats = _comparison_table(retrain, cells)
    lines += [text, ""]
    for label in [k for k in stats if k not in REFERENCES]:
        lines += [f"`{label}`:"] + _verdicts(stats, label) + [""]

    lines += ["### 4. Transfer: narrowed ResNet-26 (widths x 1/8) on `reappear`, test split (top-1 %)", ""]
    text, transfer_stats = _comparison_table(transfer, cells)
    lines += [text, ""]
    for label in [k for k in transfer_stats if k not in REFERENCES]:
        lines += [f"`{label}`:"] + _verdicts(transfer_stats, label) + [""]

    lines += ["### 5. Cost-aware search and the Pareto front", "",
              f"Regularized evolution with `objective: {{budget: {{macs: {macs_budget:.0f}}}}}` (half of non_local's "
              f"extra multiply-adds over the backbone), {plan.cost_trials} trials at seed 0. Points: every complete "
              "trial of every search at seed 0 (validation top-1) and the references at seed 0.", ""]
    points = [(f"{'cost-aware' if run is cost_aware else run['name']} {t['hash']}", t["macs"], t["value"])
              for run in [cost_aware] + [runs[0] for runs in searches.values()]
              for t in run["trials"] if t["state"] == "complete" and t["macs"] is not None]
    feasible = sum(1 for p in points if p[0].startswith("cost-aware") and p[1] <= macs_budget)
    points += [(name, reference_macs[name], reference_score[(name, 0)]) for name in REFERENCES]
    front = pareto_front(points)
    lines.append(table(["on the front", "M mult-adds / clip", "val top-1 (seed 0)"],
                       [[_display(label), f"{macs / 1e6:.3f}", _pct(acc)]
                        for label, macs, acc in front]))
    on_front = [_display(label) for label, _, _ in front if label in REFERENCES]
    lines += ["", f"The cost-aware search's complete trials within the budget: {feasible}. References on the front: "
              f"{', '.join(on_front) if on_front else 'not one'}.", ""]
    lines += conclusions(searches, seeds, target, stats, transfer_stats)
    return "\n".join(lines)


def _mean_at(curves: list[list[float]], evaluations: int) -> str:
    """Mean best-so-far after `evaluations` over the seeds ("-" until every seed has a complete trial)."""
    values = [curve[evaluations - 1] for curve in curves if len(curve) >= evaluations]
    if len(values) < len(curves) or any(v == float("-inf") for v in values):
        return "-"
    return _pct(statistics.mean(values))


def _describe_cell(cell: dict) -> str:
    spec = CellSpec.from_dict(cell)
    parts = []
    for node in spec.nodes:
        attrs = node.attr_map
        detail = attrs.get("dim", attrs.get("mode", ""))
        parts.append(f"{node.name}={node.op}/{detail}({','.join(source for _, source in node.inputs)})")
    return f"width {spec.width:g}; " + "; ".join(parts)


if __name__ == "__main__":
    main()
