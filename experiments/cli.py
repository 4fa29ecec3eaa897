"""The `attnas` command line. Every user mistake (an `AttnasError`) ends in one line on stderr and exit code 2;
a bug still prints its traceback."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from attnas.search_space.errors import AttnasError

EPILOG = """examples:
  attnas search experiments/configs/quickstart.yaml
  attnas status --latest                 # the run that started last
  attnas export quickstart --best -o best_cell.py   # the one run whose name starts with quickstart
  attnas evaluate non_local --config experiments/configs/quickstart.yaml
  attnas space default
  attnas dashboard --latest
  attnas report --latest -o report.html

RUN is a run folder, a run name under runs/, or the start of one run's name; --latest is the run started last.
"""


class UsageError(AttnasError):
    """A command-line flag that does not make sense."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2, like every user mistake
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args) or 0
    except AttnasError as error:
        print(f"attnas: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("attnas: interrupted; `attnas resume RUN` continues where this stopped", file=sys.stderr)
        return 130


MAX_CHANNELS = 65536  # an exported module's input channels; more would not allocate
MAX_SAMPLES = 10_000  # `attnas space --sample`: a listing to read, not a data set


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="attnas", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Neural architecture search for spatiotemporal attention cells in video models.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    search = commands.add_parser("search", help="run the search an experiment YAML file describes",
                                 description="Run a search. Results go to runs/NAME/ (history, Ray trial folders).")
    search.add_argument("config", help="experiment YAML file, e.g. experiments/configs/quickstart.yaml")
    search.add_argument("--name", type=_run_name, help="run name (default: the experiment's name); the run folder is "
                                                       "runs/NAME; letters, digits, '_', '-', '.' (at most 100)")
    search.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    _cluster_flags(search)
    search.add_argument("--storage", help="SQLAlchemy URL of the history database, e.g. "
                                          "postgresql://user:pass@host/db (default: SQLite in the run folder)")
    search.add_argument("--dry-run", action="store_true", help="check the experiment and print its plan "
                                                               "(resources, budget, data, storage); run nothing")
    search.add_argument("--no-data-check", action="store_true", help="with --dry-run: do not read the video "
                                                                      "folder (a cluster experiment on a laptop)")
    search.set_defaults(run=_search)

    resume = commands.add_parser("resume", help="continue a stopped search (even after kill -9)",
                                 description="Continue a search: completed trials are kept, trials that were "
                                             "running restart from their last checkpoint.")
    _run_argument(resume, shared=True)
    _storage_flag(resume)
    _cluster_flags(resume)
    resume.set_defaults(run=_resume)

    runs = commands.add_parser("list", help="the runs of a runs folder or of a database, with progress and best value",
                               description="List runs: those under a runs folder (default runs/), or every run a "
                                           "shared database holds (--storage).")
    runs.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS", help="runs folder (default: runs)")
    runs.add_argument("--storage", help="SQLAlchemy URL of a database shared by several runs")
    runs.set_defaults(run=_list)

    status = commands.add_parser("status", help="progress of a search and a table of its best cells")
    _run_argument(status, shared=True)
    _storage_flag(status)
    status.add_argument("--top", type=_positive_int, default=10, help="how many cells to list (default 10)")
    status_format = status.add_mutually_exclusive_group()
    status_format.add_argument("--json", action="store_true", help="print the status as JSON")
    status_format.add_argument("--csv", action="store_true", help="print the table of cells as CSV")
    status.set_defaults(run=_status)

    export = commands.add_parser("export", help="write a trial's cell as a standalone PyTorch module, YAML or "
                                                "torch.export program")
    _run_argument(export)
    which = export.add_mutually_exclusive_group()
    which.add_argument("--best", action="store_true", help="the best complete trial (the default)")
    which.add_argument("--trial", type=_non_negative_int, metavar="N", help="trial number N (see `attnas status`)")
    export.add_argument("--format", choices=("py", "yaml", "pt2"), default=None,
                        help="py: standalone module needing only torch; yaml: the cell spec; pt2: torch.export "
                             "program (default: from the file suffix of -o, else py)")
    export.add_argument("--channels", type=_int_in(1, MAX_CHANNELS), help="input channels C of the exported module "
                                                               "(default: where the experiment inserts the cell)")
    export.add_argument("-o", "--output", required=True, help="file to write")
    export.set_defaults(run=_export)

    evaluate = commands.add_parser("evaluate", help="score one cell with an experiment's evaluator (no search)")
    evaluate.add_argument("cell", help="cell YAML file, or a reference cell name (non_local, double_attention, "
                                       "squeeze_excitation, cbam, spatial_temporal, none)")
    evaluate.add_argument("--config", required=True, help="experiment YAML whose evaluator settings to use")
    evaluate.add_argument("--seeds", type=_positive_int, default=1, help="repeat with this many seeds (default 1)")
    evaluate.set_defaults(run=_evaluate)

    train = commands.add_parser("train", help="train a full model with a cell on the experiment's data")
    train.add_argument("cell", help="cell YAML file, or a reference cell name")
    train.add_argument("--config", required=True, help="experiment YAML whose data and backbone to use")
    train.add_argument("--epochs", type=_positive_int, help="epochs (default: 3x the experiment's proxy epochs)")
    train.add_argument("-o", "--output", help="where to save the trained weights (.pt state dict)")
    train.set_defaults(run=_train)

    space = commands.add_parser("space", help="size and summary of a search space; sample a few cells")
    space.add_argument("space", help="search-space YAML file, or a shipped space name (default, small)")
    space.add_argument("--sample", type=_int_in(0, MAX_SAMPLES), default=3, metavar="N",
                       help=f"cells to sample (default 3, at most {MAX_SAMPLES})")
    space.add_argument("--seed", type=_non_negative_int, default=0, help="seed for sampling (default 0)")
    space.set_defaults(run=_space)

    dashboard = commands.add_parser("dashboard", help="browse a search's history in optuna-dashboard (live while "
                                                      "it runs)")
    _run_argument(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                                                               "machine only; 0.0.0.0 exposes it to the network)")
    dashboard.add_argument("--port", type=_int_in(0, 65535), default=8080, help="port (default 8080; 0: any free)")
    dashboard.add_argument("--allow-writes", action="store_true", help="let the browser change the history "
                           "(delete the study, edit notes, upload artifacts); default: read-only")
    dashboard.add_argument("--trials", type=_count_or_all, metavar="N|all",
                           help="trials in the trial list of a long history: the best tenth and the latest "
                                "(default 1,000; all: every trial, slow past a few thousand)")
    dashboard.set_defaults(run=_dashboard)

    report = commands.add_parser("report", help="attnas's figures and the top cells in one self-contained HTML file")
    _run_argument(report)
    report.add_argument("--top", type=_positive_int, default=10, help="how many cells to show (default 10)")
    report.add_argument("-o", "--output", required=True, help="HTML file to write")
    report.set_defaults(run=_report)

    references = commands.add_parser("references", help="score the reference cells (backbone alone, non_local, "
                                                        "double_attention) with the run's evaluator, for the figures")
    _run_argument(references)
    references.add_argument("--cells", default="none,non_local,double_attention",
                            help="comma-separated reference cells (default: none,non_local,double_attention)")
    references.set_defaults(run=_references)

    cache = commands.add_parser("cache", help="show or clear the machine's cache of decoded data and pretrained "
                                              "backbones")
    cache.add_argument("--dir", help="cache folder (default: $ATTNAS_CACHE_DIR, else ~/.cache/attnas)")
    what = cache.add_mutually_exclusive_group()
    what.add_argument("--clear", action="store_true", help="remove every entry")
    what.add_argument("--limit", metavar="SIZE", help="remove least recently used datasets until the cache fits "
                                                      "SIZE (e.g. 20G); $ATTNAS_CACHE_LIMIT does this after "
                                                      "every new entry")
    cache.set_defaults(run=_cache)
    return parser


def _run_argument(parser: argparse.ArgumentParser, *, shared: bool = False) -> None:
    """RUN, or --latest, for the commands that read or continue a run (experiments.run_folder.find_run resolves
    them); `shared`: the command also takes --storage, where both look."""
    where = "under runs/, or in the --storage database" if shared else "under runs/"
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("run_dir", metavar="RUN", nargs="?", help="run folder, run name, or the start of one run's "
                                                                  f"name (e.g. quickstart-2026), {where}")
    which.add_argument("--latest", action="store_true", help=f"the run that started last, {where}")


def _chosen_run(args: argparse.Namespace):
    """The run that RUN or --latest names."""
    from attnas.experiments.run_folder import find_run

    return find_run(args.run_dir, latest=args.latest, storage=getattr(args, "storage", None))


def _storage_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", help="a database shared by several runs: RUN (or --latest) is a run in it (for "
                                          "a run with no folder on this machine; see `attnas list --storage URL`)")


def _cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="join this Ray cluster (e.g. ray://head:10001 or auto); default: "
                                          "RAY_ADDRESS, else start Ray locally")
    parser.add_argument("--trials", type=_positive_int, metavar="N", help="trial budget (overrides budget.trials)")
    parser.add_argument("--time", metavar="LIMIT", help="wall-time budget such as 600, 10m, 2h (overrides "
                                                        "budget.time; no new trial starts after it)")
    parser.add_argument("--quiet", action="store_true", help="no live progress display")


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _count_or_all(text: str) -> int | str:
    return "all" if text == "all" else _positive_int(text)


def _run_name(text: str) -> str:
    from attnas.experiments.run_folder import check_run_name

    try:
        return check_run_name(text, where="--name")
    except AttnasError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--name: ")) from None


def _int_in(low: int, high: int):
    """An argparse type: a whole number from `low` to `high`."""
    def parse(text: str) -> int:
        value = _non_negative_int(text) if low >= 0 else int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {value}")
        return value

    return parse


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


# ----------------------------------------------------------------------------------------------------- search
def _search(args: argparse.Namespace) -> int:
    from attnas.experiments.config import load_experiment
    from attnas.experiments.launch import start_run

    config = _with_budget_flags(load_experiment(args.config), args)
    if args.storage:
        config = replace(config, storage=args.storage)
    if args.dry_run:
        from attnas.experiments.config import controller_notes
        from attnas.experiments.plan import plan

        print("\n".join([*plan(config, check_data=not args.no_data_check).lines(), *controller_notes(config)]))
        _check_cluster(config, args.address)
        return 0
    run = start_run(config, name=args.name, runs_dir=args.runs_dir)
    return _run(config, run, args)


def _check_cluster(config, address: str | None) -> None:
    """`--dry-run`: the per-trial resources against the cluster at `address` (or RAY_ADDRESS), else this machine."""
    import os

    from attnas.experiments.ray_session import check_resources, cluster_nodes, init_ray, local_nodes, quiet_ray

    if config.controller_name == "differentiable":
        return
    if address or os.environ.get("RAY_ADDRESS"):
        import ray

        quiet_ray()
        init_ray(address)
        try:
            nodes = cluster_nodes()
        finally:
            ray.shutdown()
    else:
        nodes = local_nodes()
    check_resources(config.resources, nodes, where=config.source)


def _resume(args: argparse.Namespace) -> int:
    from attnas.experiments.config import load_experiment
    from attnas.experiments.launch import keep_experiment
    from attnas.experiments.run_folder import create_run

    run = _chosen_run(args)
    if not run.path.is_dir():  # a run of a shared database resumed on another machine: give it its folder here
        run = create_run(run.study, root=run.path.parent, storage=run.storage)
    _restore_files(run)
    config = load_experiment(str(run.experiment_file))
    overridden = _with_budget_flags(config, args)
    if overridden != config:  # overrides are part of the run: the next resume keeps them
        keep_experiment(run, overridden, space=run.space_file.read_text())
        config = overridden
    progress = run.history().progress()
    done = progress.done
    if config.budget.trials is not None and done >= config.budget.trials and not progress.rerun:
        print(f"run {run.name!r}: its budget of {config.budget.trials} trials is spent ({done} finished); extend "
              f"it with `attnas resume {run.path} --trials N` (N > {done})", file=sys.stderr)
        return 0
    return _run(config, run, args)


def _restore_files(run) -> None:
    """Write the experiment and space files back from the history when the run folder lacks them."""
    metadata = run.history().metadata
    for path, key in ((run.experiment_file, "experiment"), (run.space_file, "space")):
        if not path.exists():
            if key not in metadata:
                raise AttnasError(f"{run.path}: the history holds no {key} file to resume from")
            path.write_text(metadata[key])


def _with_budget_flags(config, args: argparse.Namespace):
    from attnas.experiments.config import parse_duration

    budget = config.budget
    if args.trials is not None:
        budget = replace(budget, trials=args.trials)
    if args.time is not None:
        try:
            parse_duration(args.time)
        except ValueError as error:
            raise UsageError(f"--time: {error}, got {args.time!r}") from None
        budget = replace(budget, time=args.time)
    return replace(config, budget=budget)


def _objective_name(config) -> str:
    from attnas.controllers.objective import Objective

    objective = Objective.from_dict(config.objective)
    return objective.metric if objective.tradeoff is None else f"reward ({objective.metric} x cost trade-off)"


def _run(config, run, args: argparse.Namespace) -> int:
    from attnas.experiments.config import controller_notes
    from attnas.experiments.driver import run_search
    from attnas.experiments.summary import reference_name

    for note in controller_notes(config):
        print(note, file=sys.stderr)

    summary = run_search(config, run, address=args.address, progress=False if args.quiet else None)
    print(f"\nsearch {run.name!r}: {summary.complete} complete, {summary.pruned} pruned, {summary.failed} failed "
          f"trials in {summary.wall_time_s:.0f} s")
    from attnas.experiments.skipped_videos import report_skipped_videos

    for line in report_skipped_videos(run):
        print(line)
    if summary.interrupted:
        print(f"attnas: the search stopped with {summary.interrupted} trials unfinished; `attnas resume {run.path}` "
              "trains them again from their last checkpoint", file=sys.stderr)
    if summary.best is None:
        print("no trial completed; see the failure reasons with `attnas status " f"{run.path}`")
        return 130 if summary.interrupted else 1
    best = summary.best
    reference = reference_name(best.hash)
    print(f"best cell {best.hash} (trial {best.number}): {_objective_name(config)} {best.value:.4f}"
          + (f"; it is the reference cell {reference!r}" if reference else ""))
    _print_cell(best.cell)
    print(f"\nrun folder: {run.path}\n  history: {run.storage}\n  Ray trials and TensorBoard logs: {run.ray_dir}")
    print(f"\nnext:\n  attnas export {run.path} --best -o best_cell.py   # standalone PyTorch module"
          f"\n  attnas status {run.path}"
          f"\n  attnas dashboard {run.path}                     # browse the history")
    return 130 if summary.interrupted else 0


# ----------------------------------------------------------------------------------------------------- status
def _status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from attnas.experiments.status import run_status

    run = _chosen_run(args)
    status = run_status(run, run.history(), top=args.top)
    if args.json or args.csv:
        sys.stdout.write(status.to_json() + "\n" if args.json else status.to_csv())
    else:
        status.print_table(Console())
    return 0


def _list(args: argparse.Namespace) -> int:
    from attnas.experiments.history import History, list_studies
    from attnas.experiments.run_folder import list_runs

    if args.storage:
        found = [(name, History(args.storage, create=False, study=name)) for name, _ in list_studies(args.storage)]
    else:
        found = [(run.path.name, run.history()) for run in list_runs(args.runs_dir)]
    if not found:
        print(f"no runs in {args.storage or args.runs_dir}")
        return 0
    for name, history in found:
        print(_run_line(name, history))
    return 0


def _run_line(name: str, history) -> str:
    """One run's name, trials finished of its budget, states, and best value."""
    from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING

    progress = history.progress()
    counts = [f"{progress.finished[s]} {s}" for s in (COMPLETE, PRUNED, FAILED)]
    counts.append(f"{progress.counts[RUNNING]} {RUNNING}")
    unfinished = sum(1 for r in progress.rerun if r.state != RUNNING)
    if unfinished:
        counts.append(f"{unfinished} interrupted")
    budget = _budget_of(history.metadata.get("experiment"))
    best = history.best(1)
    shown = f"best {history.objective.metric} {best[0].value:.4f} (trial {best[0].number}, {best[0].hash})" \
        if best else "no complete trial"
    return f"{name}: {progress.done}{f'/{budget}' if budget else ''} trials ({', '.join(counts)}); {shown}"


def _budget_of(experiment: str | None) -> int | None:
    import yaml

    try:
        trials = (yaml.safe_load(experiment or "") or {}).get("budget", {}).get("trials")
    except (yaml.YAMLError, AttributeError):
        return None
    return trials if isinstance(trials, int) else None


def _print_cell(cell: dict) -> None:
    from attnas.search_space import CellSpec

    print(CellSpec.from_dict(cell).to_yaml().rstrip())


# ----------------------------------------------------------------------------------------------------- export
def _export(args: argparse.Namespace) -> int:
    from attnas.experiments.export import export_trial, weights_path

    run_dir = str(_chosen_run(args).path)
    path = export_trial(run_dir, trial=args.trial, output=args.output, fmt=args.format, channels=args.channels)
    if args.trial is not None:
        _warn_unfinished(run_dir, args.trial)
    print(f"wrote {path}")
    weights = weights_path(path)
    if path.suffix == ".py" and weights.exists():
        print(f"wrote {weights} (the trained weights: module.load_state_dict(torch.load('{weights}')))")
    elif path.suffix == ".py" and _scored_by_simulation(args.run_dir):
        print(f"attnas: warning: no trained weights written beside {path}: the run used the simulated evaluator, "
              "which trains nothing; the module starts untrained", file=sys.stderr)
    elif path.suffix == ".py":
        print(f"attnas: warning: no trained weights written beside {path}: the trial's checkpoint is not in the "
              "run folder (or --channels differs from the trained cell); the module starts untrained",
              file=sys.stderr)
    return 0


def _scored_by_simulation(run_dir: str) -> bool:
    from attnas.evaluators.simulated import is_simulated
    from attnas.experiments.config import load_experiment
    from attnas.experiments.run_folder import open_run

    return is_simulated(load_experiment(str(open_run(run_dir).experiment_file)).evaluator)


def _warn_unfinished(run_dir: str, number: int) -> None:
    """Say so when the exported trial did not complete: its cell is exported, but it has no final score."""
    from attnas.experiments.history import FAILED, PRUNED
    from attnas.experiments.run_folder import open_run

    record = open_run(run_dir).history().trial(number)
    if record.state == PRUNED:
        print(f"warning: trial {number} was pruned after {len(record.curve)} of its epochs (stopped early as a weak "
              "cell): its cell is exported, but it has no final score", file=sys.stderr)
    elif record.state == FAILED:
        print(f"warning: trial {number} failed ({record.reason or 'no reason recorded'}): its cell is exported, "
              "but it was never scored", file=sys.stderr)


# --------------------------------------------------------------------------------------- evaluate and train
def _evaluate(args: argparse.Namespace) -> int:
    from attnas.experiments.standalone import evaluate_cell

    evaluate_cell(args.cell, config_path=args.config, seeds=args.seeds)
    return 0


def _train(args: argparse.Namespace) -> int:
    from attnas.experiments.standalone import train_cell

    train_cell(args.cell, config_path=args.config, epochs=args.epochs, output=args.output)
    return 0


# ------------------------------------------------------------------------------------------------- dashboard
def _dashboard(args: argparse.Namespace) -> int:
    from attnas.experiments.dashboard.server import DashboardServer

    window = {} if args.trials is None else {"trials": None if args.trials == "all" else args.trials}
    server = DashboardServer(_chosen_run(args).path, host=args.host, port=args.port, allow_writes=args.allow_writes,
                             **window)
    if server.warning:
        print(server.warning, file=sys.stderr, flush=True)
    print(f"optuna-dashboard for run {server.run.name!r}: {server.url}  (Ctrl-C to stop)", flush=True)
    if server.shown:
        print(server.shown, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _report(args: argparse.Namespace) -> int:
    from attnas.experiments.dashboard.report import build_report

    print(f"wrote {build_report(_chosen_run(args).path, args.output, top=args.top)}")
    return 0


def _references(args: argparse.Namespace) -> int:
    from attnas.experiments.references import score_references

    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not cells:
        raise UsageError("--cells: expected at least one reference cell name")
    score_references(_chosen_run(args).path, cells=cells)
    return 0


def _cache(args: argparse.Namespace) -> int:
    from attnas.experiments.cache_command import cache_lines, clear_cache, default_root

    root = default_root(args.dir)
    if args.clear or args.limit:
        print(clear_cache(root, None if args.clear else args.limit))
    print("\n".join(cache_lines(root)))
    return 0


# ------------------------------------------------------------------------------------------------------ space
def _space(args: argparse.Namespace) -> int:
    import numpy as np

    from attnas.search_space import load_space

    space = load_space(args.space)
    size = space.count()
    print(f"search space {space.name!r}: up to {space.max_nodes} operations, widths {list(space.widths)}")
    print(f"ops: {', '.join(space.ops)}")
    print(f"ordered specs: {size.ordered_specs:,}")
    cells = f"{size.cells:,.0f}" if size.exact else f"about {size.cells:,.0f} (+/- {size.standard_error:,.0f})"
    print(f"distinct cells: {cells}  [{size.method}]")
    rng = np.random.default_rng(args.seed)
    for index in range(args.sample):
        cell = space.sample(rng)
        print(f"\n# sample {index + 1}: {cell.hash}\n{cell.to_yaml()}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
