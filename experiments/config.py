"""The experiment file: one YAML document describing a whole search (docs/design.md, "Search, history").

    name: quickstart                    # names the run folder runs/<name>/
    space: small                        # shipped space name, or a path relative to this file
    controller: {name: evolution, population: 8, tournament: 3}   # name + the controller's own settings
    objective: {metric: accuracy, budget: {macs: 2.0e8}}           # see controllers/objective.py
    evaluator: {task: ..., epochs: 3, ...}                         # see evaluators (ProxyConfig)
    budget: {trials: 24, time: 15m}     # stop at whichever comes first
    concurrency: 2                      # trials at once (Ray Tune's max_concurrent_trials)
    resources: {cpus: 1, gpus: 0}       # per trial; fractional GPUs allowed
    early_stopping: {scheduler: asha, grace_period: 1, reduction_factor: 2}
    storage: null                       # SQLAlchemy URL; default sqlite:///runs/<name>/history.db
    retries: 1                          # restarts of a trial whose worker died
    seed: 0

Every error names the file and the dotted field, with a did-you-mean for unknown keys.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from attnas.experiments.run_folder import check_run_name
from attnas.search_space.schema import ConfigError, non_negative, parse, positive
from attnas.search_space.errors import AttnasError
from attnas.search_space.resources import space_names, space_path
from attnas.search_space.yaml_io import load_yaml

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float | None:
    """Seconds from a number of seconds or a text such as '90s', '10m', '2h', '1d'; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ValueError("expected a positive duration such as 600, '90s', '10m', '2h'")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _duration_check(value: Any) -> str | None:
    try:
        parse_duration(value)
    except ValueError as error:
        return str(error)
    return None


@dataclass(frozen=True)
class Budget:
    """When the search stops: after `trials` trials or `time` of wall time, whichever comes first."""

    trials: int | None = field(default=20, metadata={"check": positive})
    time: float | str | None = field(default=None, metadata={"check": _duration_check})

    @property
    def seconds(self) -> float | None:
        return parse_duration(self.time)


@dataclass(frozen=True)
class Resources:
    """What one trial gets from Ray: CPUs, and GPUs (fractions share a GPU between trials)."""

    cpus: float = field(default=1.0, metadata={"check": lambda v: _ray_quantity(v, allow_zero=False)})
    gpus: float = field(default=0.0, metadata={"check": lambda v: _ray_quantity(v, allow_zero=True)})
    # Once the cluster has lost every node that can run a trial: how long to wait for one to join before the
    # search stops (experiments/node_watch.py); null waits for ever.
    wait_for_nodes: float | str | None = field(default=60, metadata={"check": _duration_check})

    @property
    def wait_for_nodes_s(self) -> float | None:
        return parse_duration(self.wait_for_nodes)


def _ray_quantity(value: float, *, allow_zero: bool) -> str | None:
    # Ray counts resources in steps of 1/10000; a smaller positive amount would end in Ray's own traceback.
    if value == 0 and allow_zero:
        return None
    return None if value >= 1e-4 else ("expected 0 or a number >= 0.0001" if allow_zero else
                                       "expected a number >= 0.0001")


@dataclass(frozen=True)
class EarlyStopping:
    """None, or ASHA (Li et al. 2020) stopping weak cells at rungs grace_period * reduction_factor^k epochs."""

    scheduler: Literal["none", "asha"] = "none"
    grace_period: int = field(default=1, metadata={"check": positive})
    reduction_factor: int = field(default=2, metadata={"check": lambda v: None if v >= 2 else "expected >= 2"})


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment as read from its YAML file."""

    name: str
    space: str = "default"
    controller: dict[str, Any] = field(default_factory=lambda: {"name": "evolution"})
    objective: dict[str, Any] = field(default_factory=dict)
    evaluator: dict[str, Any] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    concurrency: int = field(default=1, metadata={"check": positive})
    resources: Resources = field(default_factory=Resources)
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    storage: str | None = None
    retries: int = field(default=1, metadata={"check": non_negative})
    seed: int = field(default=0, metadata={"check": non_negative})
    source: str = field(default="<experiment>", compare=False)

    @property
    def space_path(self) -> str:
        """The search space file: a shipped name, or a path relative to the experiment file."""
        if self.space in space_names():
            return str(space_path(self.space))
        candidate = Path(self.space)
        if not candidate.is_absolute() and self.source not in ("<experiment>",):
            candidate = Path(self.source).parent / candidate
        return str(candidate)

    @property
    def controller_name(self) -> str:
        return str(self.controller.get("name", "evolution"))

    @property
    def controller_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.controller.items() if k != "name"}

    def with_overrides(self, **changes: Any) -> "ExperimentConfig":
        return replace(self, **changes)

    def resolved_yaml(self, *, space: str) -> str:
        """This experiment as a run folder keeps it: every default filled in, command-line overrides written in,
        the space named by `space` (a file beside it) and no storage (the run folder records that)."""
        import dataclasses

        import yaml

        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        data.update(space=space, storage=None, budget=dataclasses.asdict(self.budget),
                    resources=dataclasses.asdict(self.resources),
                    early_stopping=dataclasses.asdict(self.early_stopping))
        return yaml.safe_dump(data, sort_keys=False)


def load_experiment(path: str) -> ExperimentConfig:
    """Read, validate and cross-check an experiment file; every problem is one `AttnasError` line."""
    data, where = load_yaml(path)
    return experiment_from_data(data, where=where, source=str(path))


def experiment_from_data(data: Any, *, where: str = "<experiment>", source: str = "<experiment>") -> ExperimentConfig:
    """An experiment from already-read YAML data (a dict), validated as `load_experiment` validates a file."""
    config = parse(ExperimentConfig, data, where=where)
    check_run_name(config.name, where=f"{where}: name")
    config = replace(config, source=source)
    validate_parts(config)
    return config


def validate_parts(config: ExperimentConfig) -> None:
    """Check the sections owned by other packages (space, controller, objective, evaluator) now, not mid-run."""
    from attnas.controllers import create_controller
    from attnas.controllers.objective import Objective
    from attnas.search_space import SearchSpace

    where = config.source
    if not isinstance(config.controller.get("name", "evolution"), str):
        raise ConfigError(f"{where}: controller.name: expected a controller name")
    try:
        space = SearchSpace.from_yaml(config.space_path)
    except AttnasError as error:
        raise ConfigError(f"{where}: space: {error}") from None
    from attnas.experiments.results import check_objective

    objective = _prefixed(where, "objective", lambda: Objective.from_dict(config.objective, source="objective"))
    check_objective(objective, where=where)
    if config.controller_name == "differentiable":  # a DARTS search, not a controller (experiments/differentiable.py)
        differentiable_settings(config.controller_settings, space, where=where)
    else:
        _prefixed(where, "controller", lambda: create_controller(
            config.controller_name, space=space, seed=config.seed, objective=objective, **config.controller_settings))
    evaluator_config(config.evaluator, where=where)
    if config.controller_name == "differentiable":  # its supernet trains with the proxy trainer, whatever else
        proxy_config(config.evaluator, where=where)


def evaluator_config(evaluator: dict[str, Any], *, where: str):
    """The experiment's `evaluator:` section: a user's evaluator (`custom: module:attr`, evaluators/custom.py,
    checked to import, with the experiment file's folder on sys.path), the simulated evaluator (`kind: simulated`,
    evaluators/simulated.py) or the proxy trainer's `ProxyConfig`."""
    from attnas.evaluators.custom import CustomEvaluatorConfig, is_custom, load_evaluator
    from attnas.evaluators.simulated import SimulatedEvaluatorConfig

    if isinstance(evaluator, dict) and "kind" in evaluator and not is_custom(evaluator):
        try:
            return parse(SimulatedEvaluatorConfig, evaluator, where=where, path="evaluator")
        except ConfigError:
            raise
        except AttnasError as error:  # its cross-field check (epochs against the replayed table's)
            raise ConfigError(f"{where}: {error}") from None
    if not is_custom(evaluator):
        return proxy_config(evaluator, where=where)
    custom = parse(CustomEvaluatorConfig, evaluator, where=where, path="evaluator")
    folder = str(Path(where).resolve().parent) if Path(where).is_file() else None
    if folder and folder not in sys.path:
        sys.path.append(folder)  # a module beside the experiment file; Ray hands sys.path on to its workers
    try:
        load_evaluator(custom.custom)
    except AttnasError as error:
        raise ConfigError(f"{where}: {error}") from None
    return custom


def controller_notes(config: ExperimentConfig) -> list[str]:
    """What the user should know about how the controller will behave under this budget (dry-run and search)."""
    if config.controller_name != "bayesian" or config.budget.trials is None:
        return []
    import inspect

    from attnas.controllers import get_controller

    default = inspect.signature(get_controller("bayesian").__init__).parameters["initial_random"].default
    initial = config.controller_settings.get("initial_random", default)
    if isinstance(initial, int) and config.budget.trials <= initial:
        return [f"note: controller bayesian samples its first initial_random={initial} cells at random, and the "
                f"budget is {config.budget.trials} trials: this search is random search (raise budget.trials or "
                "lower controller.initial_random)"]
    return []


def proxy_config(evaluator: dict[str, Any], *, where: str):
    """The experiment's `evaluator:` section as the evaluator's `ProxyConfig`, checked field by field."""
    from attnas.evaluators.config import ProxyConfig
    from attnas.evaluators.custom import is_custom
    from attnas.evaluators.simulated import is_simulated

    if is_custom(evaluator):
        raise ConfigError(f"{where}: evaluator.custom: this command needs the built-in proxy evaluator; a custom "
                          "evaluator runs in `attnas search` and `attnas.search` only")
    if is_simulated(evaluator):
        raise ConfigError(f"{where}: evaluator.kind: this command needs the built-in proxy evaluator; the simulated "
                          "evaluator runs in `attnas search`, `attnas.search` and `attnas evaluate` only")
    try:
        return ProxyConfig.from_dict(evaluator, where=where, path="evaluator")
    except ConfigError:
        raise
    except AttnasError as error:  # ProxyConfig's own cross-field checks
        raise ConfigError(f"{where}: evaluator: {str(error).removeprefix('proxy config: ')}") from None


def differentiable_settings(settings: dict[str, Any], space, *, where: str):
    """The `controller:` section (without `name`) as `DifferentiableConfig`, checked against the space."""
    from attnas.evaluators.differentiable import DifferentiableConfig

    try:
        parsed = parse(DifferentiableConfig, settings, where=where, path="controller")
    except ConfigError:
        raise
    except AttnasError as error:
        raise ConfigError(f"{where}: controller: {str(error).removeprefix('differentiable search: ')}") from None
    if parsed.width is not None and parsed.width not in space.widths:
        raise ConfigError(f"{where}: controller.width: expected one of the space's widths {list(space.widths)}, "
                          f"got {parsed.width!r}")
    return parsed


def _prefixed(where: str, section: str, build):
    try:
        return build()
    except ConfigError:
        raise
    except AttnasError as error:
        message = str(error)
        if not message.startswith((f"{section}.", f"{section}:")):
            message = f"{section}: {message}"
        raise ConfigError(f"{where}: {message}") from None
