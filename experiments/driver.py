"""The search driver: a Ray Tune `Tuner` whose `Searcher` wraps a controller and whose trainable runs the
evaluator (docs/design.md, "Search, history, dashboard").

The driver is the only writer of the history. For every trial the searcher asks the controller for a cell, records
a RUNNING trial in the study, receives each epoch's result (for the learning curve, and for ASHA), and on completion
tells both the controller and the study. Trials that were running when a previous driver was killed (kill -9) are
re-run first, from their last checkpoint, under the same trial number; trials a driver closed as `interrupted` when
it stopped (Ctrl-C, an error) are re-run from their checkpoint as new trials; completed trials are never re-run.
After any exit but kill -9, no trial of the run is left running.

Budget: `budget.trials` counts trials that finished (complete, pruned or failed), not the interrupted ones trained
again nor starts a killed driver left half-written.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

from attnas.controllers import Controller, Observation, create_controller, get_controller
from attnas.controllers.objective import Objective
from attnas.experiments.config import ExperimentConfig, evaluator_config
from attnas.experiments.history import RUNNING, TrialRecord, counted, to_rerun
from attnas.experiments.ray_session import check_resources, cluster_nodes, init_ray, lean_tune, quiet_ray
from attnas.experiments.run_folder import RunFolder
from attnas.experiments.summary import SearchSummary, summarize
from attnas.experiments.wording import duration, plural
from attnas.search_space import SearchSpace
from attnas.search_space.errors import AttnasError

log = logging.getLogger(__name__)

__all__ = ["SearchSummary", "build_controller", "check_resources", "cluster_nodes", "init_ray", "quiet_ray",
           "run_search", "summarize"]


def build_controller(config: ExperimentConfig, space: SearchSpace,
                     records: list[TrialRecord]) -> tuple[Controller, list[TrialRecord]]:
    """The controller rebuilt from the history's finished trials, and the trials to train again (`to_rerun`)."""
    objective = Objective.from_dict(config.objective)
    settings = dict(config.controller_settings)
    for record in records:  # run_search has refused unreadable records before reading these
        if record.problem:  # a tampered or corrupt record: the controller learns from the others
            print(f"attnas: {record.problem}; left out of the controller's history", file=sys.stderr)
    cells = {r.number: _cell_of(space, r) for r in records if r.problem is None}
    readable = [r for r in records if cells.get(r.number, False) is not False]
    finished, interrupted = [], to_rerun(readable)
    for record in readable:
        if counted(record):
            values = {k: v for k, v in record.values.items()}
            finished.append(Observation(trial_id=record.attrs.get("ray_trial_id", f"history-{record.number}"),
                                        cell=cells[record.number], values=values, state=record.state))
    if finished or interrupted:
        cls = get_controller(config.controller_name)
        controller = cls.from_history(space, finished, seed=config.seed, objective=objective, **settings)
        for record in interrupted:
            controller.hold_pending(record.attrs.get("ray_trial_id", f"history-{record.number}"),
                                    space.from_data(record.cell))
    else:
        controller = create_controller(config.controller_name, space=space, seed=config.seed, objective=objective,
                                       **settings)
    return controller, interrupted


def refuse_unreadable(records: list[TrialRecord]) -> None:
    """A one-line error when a record holds text that is not JSON: Optuna's own reader fails on it, so no trial
    could be added to (or repaired in) this study."""
    for record in records:
        if record.unreadable:
            raise AttnasError(f"{record.problem}; a search cannot continue while its history holds text that is not "
                              "JSON (status, report and export still read the other trials)")


def _cell_of(space: SearchSpace, record: TrialRecord) -> Any:
    """A trial's recorded cell as a cell of the space, None for a trial closed on purpose without one, or False
    when it does not read as one: a corrupt record is named and left out of the controller's history (and not
    trained again), and the search goes on with the others."""
    if record.attrs.get("half_written"):
        return None  # closed on purpose without a cell; never read
    try:
        return space.from_data(record.cell)
    except AttnasError as error:
        log.warning("trial %s: field 'cell': %s; the trial is left out of the controller's history",
                    record.number, str(error)[:200])
        return False


def run_search(config: ExperimentConfig, run: RunFolder, *, address: str | None = None,
               progress: bool | None = None) -> SearchSummary:
    """Run (or continue) the search `config` describes in `run`, until its budget is spent."""
    if config.controller_name == "differentiable":  # one supernet training job (experiments/differentiable.py)
        from attnas.experiments.differentiable import run_differentiable

        return run_differentiable(config, run, address=address, progress=progress)
    started_at = time.time()
    objective = Objective.from_dict(config.objective)
    history = run.history(create=True)
    history.metric = objective.metric
    history.set_metadata(objective=objective.to_dict())
    records = history.trials()  # the one whole read of the history a search makes
    refuse_unreadable(records)
    unfinished = [r.number for r in records if r.state == RUNNING]  # left running or queued: `recover` repairs
    if unfinished:
        history.recover()
        fresh = {r.number: r for r in history.trials(numbers=unfinished)}
        records = [fresh.get(r.number, r) for r in records]
    space = SearchSpace.from_yaml(str(run.space_file))
    controller, interrupted = build_controller(config, space, records)
    evaluator = evaluator_config(config.evaluator, where=config.source)
    epochs = int(evaluator.epochs)
    done = sum(1 for r in records if counted(r))
    remaining = max(0, (config.budget.trials or 10**9) - done - len(interrupted))
    deadline = started_at + config.budget.seconds if config.budget.seconds else None
    metric = objective.metric

    if len(interrupted) + remaining == 0:
        return summarize(run, records, started_at, objective)

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from attnas.experiments.dashboard import DashboardPublisher
    from attnas.experiments.dashboard.background import BackgroundPublisher
    from attnas.experiments.node_watch import NodeWatch
    from attnas.experiments.progress import SearchProgress
    from attnas.experiments.searcher import ControllerSearcher
    from attnas.experiments.trainable import train_trial

    quiet_ray()
    owns_ray = not ray.is_initialized()
    init_ray(address)
    try:
        check_resources(config.resources, cluster_nodes(), where=config.source)
    except AttnasError:
        if owns_ray:
            ray.shutdown()
        raise
    # cell drawings, notes and figures for the dashboard, made on a thread of their own (off the search loop)
    publisher = BackgroundPublisher(DashboardPublisher.for_run(run, history))
    searcher = ControllerSearcher(controller=controller, space=space, history=history,
                                  evaluator=config.evaluator, epochs=epochs, trials=remaining, deadline=deadline,
                                  interrupted=interrupted, objective=objective, publisher=publisher,
                                  run_path=run.path)
    if config.early_stopping.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=config.early_stopping.grace_period,
                                  reduction_factor=config.early_stopping.reduction_factor, stop_last_trials=False)
    else:
        scheduler = FIFOScheduler()
    reporter = SearchProgress(history=history, searcher=searcher, total=done + len(interrupted) + remaining,
                              deadline=deadline, enabled=progress, concurrency=config.concurrency,
                              plan=search_plan_line(config, run, done=done, epochs=epochs))
    wait_s = config.resources.wait_for_nodes_s
    node_watch = NodeWatch(config.resources, wait_s=wait_s) if wait_s is not None else None
    tune_callbacks = lean_tune()
    trainable = tune.with_resources(train_trial, {"cpu": config.resources.cpus, "gpu": config.resources.gpus})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, metric=metric, mode="max",
            num_samples=len(interrupted) + remaining, max_concurrent_trials=config.concurrency,
            reuse_actors=True, trial_dirname_creator=_trial_folder, trial_name_creator=_trial_folder,
        ),
        run_config=tune.RunConfig(
            name=f"tune-{int(started_at)}", storage_path=str(run.ray_dir.resolve()), verbose=0,
            failure_config=tune.FailureConfig(max_failures=config.retries),
            # every checkpoint, as far as Tune knows: the progress callback deletes all but each trial's last two
            # (experiments/progress.py, CHECKPOINTS_KEPT), without the experiment-state save num_to_keep forces
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=[reporter, *tune_callbacks], stop=node_watch,
        ),
    )
    stopped_by = "the search stopped before this trial finished"
    try:
        with reporter:
            tuner.fit()
    except KeyboardInterrupt:
        stopped_by = "the search was interrupted (Ctrl-C) before this trial finished"
        raise
    except Exception as error:
        stopped_by = f"the search stopped on an error before this trial finished ({type(error).__name__})"
        raise
    finally:
        if node_watch is not None and node_watch.lost:
            stopped_by = "the search stopped: the cluster lost the nodes that could run this trial"
        searcher.close_open(f"{stopped_by}; `attnas resume` trains it again from its last checkpoint")
        try:
            publisher.finish()
        finally:
            if owns_ray:
                ray.shutdown()
    if searcher.fatal:
        raise AttnasError(f"search {run.name!r} stopped: {searcher.fatal}")
    if node_watch is not None and node_watch.lost:
        raise AttnasError(f"search {run.name!r} stopped: {node_watch.lost}")
    return summarize(run, history.trials(), started_at, objective)


def search_plan_line(config: ExperimentConfig, run: RunFolder, *, done: int, epochs: int) -> str:
    """The line a search starts with: controller, budget, trials at once, where the run folder is."""
    budget = [plural(config.budget.trials, "trial")] if config.budget.trials else []
    if config.budget.seconds:
        budget.append(duration(config.budget.seconds))
    resumed = f", {plural(done, 'trial')} already done" if done else ""
    return (f"search {run.name!r}: controller {config.controller_name}, budget {' or '.join(budget) or 'unbounded'}, "
            f"{plural(epochs, 'epoch')} a trial, {plural(config.concurrency, 'trial')} at once{resumed}; "
            f"run folder {run.path}")


def _trial_folder(trial) -> str:
    return f"trial-{trial.config.get('number', 'x')}-{trial.trial_id}"
