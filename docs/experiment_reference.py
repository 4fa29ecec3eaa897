"""Writes docs/experiment-file.md, the reference of every field of an experiment file, from the schema itself:
the field names, types and defaults come from the config dataclasses (attnas.experiments.config, the evaluators'
configs) and from each registered controller's signature; only the one-line meanings are written here, and
tests/docs/test_reference.py fails when a field has none, when a meaning names a field that no longer exists, or
when the committed file differs from what this script writes.

    .venv/bin/python docs/experiment_reference.py     # rewrite docs/experiment-file.md
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from pathlib import Path
from typing import Any

from attnas.controllers.registry import CONTROLLERS, controller_settings
from attnas.evaluators.config import ProxyConfig
from attnas.evaluators.custom import CustomEvaluatorConfig
from attnas.evaluators.differentiable import DifferentiableConfig
from attnas.evaluators.simulated import SimulatedEvaluatorConfig
from attnas.experiments.config import ExperimentConfig
from attnas.experiments.schema import expectation

OUTPUT = Path(__file__).resolve().parent / "experiment-file.md"
COMMON_CONTROLLER_SETTINGS = ("space", "seed", "objective")  # given by the experiment, not by `controller:`

# dotted field -> what it means. Everything else in the reference is read from the schema.
MEANINGS = {
    "name": "names the run folder, runs/NAME/ (letters, digits, `_`, `-`, `.`)",
    "space": "a shipped search space (`default`, `small`) or a search-space YAML file, relative to this file",
    "controller": "`name:` one of the controllers below, plus that controller's settings",
    "objective": "what the search maximises; see *Objective forms*",
    "evaluator": "how a trial scores a cell: the built-in proxy trainer's settings, `custom:` a user's evaluator, "
                 "or `kind: simulated`",
    "budget": "when the search stops",
    "budget.trials": "number of trials (null: no limit)",
    "budget.time": "wall time such as 600, `90s`, `10m`, `2h`; no new trial starts after it (null: no limit)",
    "concurrency": "trials at once (Ray Tune's max_concurrent_trials)",
    "resources": "what Ray gives each trial",
    "resources.cpus": "CPUs per trial (also the trial's torch threads)",
    "resources.gpus": "GPUs per trial; fractions (0.5) let trials share a GPU",
    "resources.wait_for_nodes": "seconds (or `90s`, `10m`) a search waits, once the cluster has lost every node "
                                "that can run a trial, for one to join before it stops (null: for ever)",
    "early_stopping": "stopping weak cells before their last epoch",
    "early_stopping.scheduler": "`none`, or `asha` (asynchronous successive halving, Li et al. 2020)",
    "early_stopping.grace_period": "epochs every trial runs before ASHA may stop it",
    "early_stopping.reduction_factor": "ASHA keeps the best 1/reduction_factor of the trials at each rung",
    "storage": "SQLAlchemy URL of the history (null: SQLite in the run folder); PostgreSQL on a cluster",
    "retries": "restarts of a trial whose worker died, from its last checkpoint",
    "seed": "seed of the controller",
    # the built-in proxy evaluator (evaluators/config.py)
    "evaluator.data": "where the clips come from",
    "evaluator.data.task": "synthetic task (`odd_one_out`, ...; see evaluators/data/synthetic.py) when no video_root",
    "evaluator.data.fields": "the synthetic task's own settings",
    "evaluator.data.train_size": "training clips of the synthetic task",
    "evaluator.data.validation_size": "validation clips (the reward is top-1 on them)",
    "evaluator.data.test_size": "held-out test clips (`attnas train`)",
    "evaluator.data.seed": "seed of the generated data",
    "evaluator.data.video_root": "a folder of real videos; replaces the synthetic task",
    "evaluator.data.video_layout": "how video_root is organised: `kinetics`, `ucf101`, `hmdb51` or `folder`",
    "evaluator.data.sampling": "which frames of a video become a clip",
    "evaluator.data.sampling.mode": "`dense` (consecutive frames at `stride`) or `uniform` (spread over the video)",
    "evaluator.data.sampling.frames": "frames per clip",
    "evaluator.data.sampling.stride": "frame step of dense sampling",
    "evaluator.data.sampling.clips": "clips per video",
    "evaluator.data.sampling.resize": "shorter side after resizing, in pixels",
    "evaluator.data.sampling.crop": "side of the square centre crop, in pixels",
    "evaluator.data.cache_dir": "where decoded data is cached (null: ~/.cache/attnas or $ATTNAS_CACHE_DIR)",
    "evaluator.data.use_cache": "false: generate or decode in memory every time",
    "evaluator.data.video_fold": "which official split list of UCF-101 / HMDB-51 (1, 2 or 3)",
    "evaluator.data.video_validation_fraction": "share of the training videos held out for validation when the "
                                                "layout has no validation split",
    "evaluator.data.video_split_dir": "folder of the split lists (null: the layout's usual place under video_root)",
    "evaluator.data.video_annotations": "Kinetics annotation folder or file (null: the layout's usual place)",
    "evaluator.data.video_workers": "processes decoding on the first load (null: one per CPU, at most 8)",
    "evaluator.data.drop_empty_classes": "drop classes without a usable training video (with a warning) instead "
                                         "of stopping with an error naming them",
    "evaluator.backbone": "the model the cell goes into: a registered backbone (cells/backbones)",
    "evaluator.backbone_args": "keyword arguments of the backbone (widths, width_multiplier, ...)",
    "evaluator.at": "placements: `block:unit` names (e.g. `conv2:0`) after which a cell is inserted",
    "evaluator.epochs": "training epochs of a trial; ASHA's max_t",
    "evaluator.batch_size": "training batch size",
    "evaluator.eval_batch_size": "batch size when scoring",
    "evaluator.optimizer": "`adamw` or `sgd`",
    "evaluator.lr": "peak learning rate",
    "evaluator.momentum": "SGD momentum",
    "evaluator.weight_decay": "weight decay",
    "evaluator.schedule": "learning-rate schedule: `onecycle`, `cosine` or `constant`",
    "evaluator.warmup": "fraction of the steps spent warming up",
    "evaluator.label_smoothing": "label smoothing of the cross-entropy loss",
    "evaluator.seed": "seed of the model's initialisation and the data order",
    "evaluator.device": "`auto` (a GPU when the trial has one, else CPU), `cpu` or `cuda`",
    "evaluator.threads": "torch threads (null: the CPUs the trial was given)",
    "evaluator.measure_latency": "time one forward pass at the end of the trial",
    "evaluator.latency_batch": "clips in the timed forward pass",
    "evaluator.repeats": "models trained side by side at seeds seed, seed + 1, ...; the reward is their mean",
    "evaluator.pretrain_epochs": "epochs of the backbone alone, trained once per machine; every trial starts "
                                 "from it with its cell at identity (0: from random weights)",
    "evaluator.pretrain_seed": "seed of that pretraining",
    "evaluator.freeze_front": "keep the pretrained layers before the first placement fixed",
    "evaluator.feature_cache": "with the front frozen and no augmentation, train from the front's output computed "
                               "once per machine (same results, less work)",
    "evaluator.feature_cache_budget_mb": "largest feature cache in MB; a larger one falls back to training on clips",
    "evaluator.validation_subset": "validation clips scoring every epoch but the last (which scores the whole "
                                   "split); 0: the whole split every epoch",
    "evaluator.augment": "`none` or `flip` (training clips mirrored left-right at random; turns the feature cache "
                         "off)",
    "evaluator.precision": "`auto` (bf16 on a GPU, fp32 on CPU), `bf16`, `fp16` (with a gradient scaler) or `fp32`",
    # a user's evaluator (evaluators/custom.py)
    "evaluator.custom": "`module:attr`: a function `evaluate(cell, context)` or a class (docs/evaluators.md)",
    "evaluator.custom.epochs": "epochs the evaluator reports; ASHA's max_t",
    "evaluator.custom.seed": "handed to the evaluator as `context.seed`",
    "evaluator.custom.settings": "anything; `context.settings` (a class gets them as keyword arguments)",
    # the simulated evaluator (evaluators/simulated.py)
    "evaluator.simulated.kind": "`simulated`: trials score cells by a fixed function instead of training",
    "evaluator.simulated.epochs": "epochs each trial reports; ASHA's max_t",
    "evaluator.simulated.epoch_seconds": "seconds each epoch sleeps (0: instant trials)",
    "evaluator.simulated.seed": "which fixed random function of the cell's WL features is the score",
    "evaluator.simulated.noise": "amplitude of the deterministic noise on every epoch's accuracy but the last",
    "evaluator.simulated.costs": "report multiply-adds and parameters from the real cost model (false: never "
                                 "imports torch on the workers)",
    "evaluator.simulated.table": "`attnbench` (the table shipped in the package) or an absolute path to an "
                                 "AttnBench table: replay its stored curves and costs instead of the formula "
                                 "(docs/attnbench.md); epochs must equal the table's",
    # controllers
    "controller.random": "uniform samples of the space, never a cell twice; the reference the others are "
                         "measured against",
    "controller.evolution": "regularized evolution (Real et al. 2019): tournaments in the youngest population, "
                            "the winner mutated",
    "controller.evolution.population_size": "the youngest observations that make the population",
    "controller.evolution.sample_size": "members drawn for each tournament",
    "controller.evolution.mutation_attempts": "mutations tried before a child is new",
    "controller.bayesian": "Bayesian optimisation: a Gaussian process over Weisfeiler-Lehman graph features, "
                           "expected improvement over mutated and random candidates (NAS-BOWL)",
    "controller.bayesian.initial_random": "random cells before the GP is fitted",
    "controller.bayesian.parents": "best cells whose mutations are candidates",
    "controller.bayesian.mutation_candidates": "mutated candidates scored per proposal",
    "controller.bayesian.random_candidates": "random candidates scored per proposal",
    "controller.bayesian.max_train": "most recent observations the GP is fitted on",
    "controller.bayesian.kernel": "`rbf` (exponentiated WL kernel) or `linear` (the plain WL kernel)",
    "controller.bayesian.encoding": "`wl` graph features, or `wl+vector` with the flat encoding as well",
    "controller.bayesian.xi": "exploration margin of expected improvement",
    "controller.tpe": "Optuna's tree-structured Parzen estimator over the space's flat encoding",
    "controller.tpe.n_startup_trials": "random trials before TPE models the history",
    "controller.tpe.multivariate": "model the encoding's positions jointly",
    "controller.tpe.repair_attempts": "tries to turn an invalid vector into a valid cell",
    "controller.differentiable": "AttentionNAS's differentiable search: one supernet holding every choice, mixed "
                                 "by architecture weights (first-order DARTS, or GDAS with `sampling: gumbel`)",
    "controller.differentiable.epochs": "search epochs (null: the evaluator's epochs)",
    "controller.differentiable.warmup_epochs": "weight-only epochs first",
    "controller.differentiable.arch_lr": "Adam learning rate of the architecture logits",
    "controller.differentiable.arch_weight_decay": "Adam weight decay of the architecture logits",
    "controller.differentiable.arch_betas": "Adam betas of the architecture logits",
    "controller.differentiable.width": "the inner width the supernet is built for (null: the space's first)",
    "controller.differentiable.retrain": "re-train the final derived cell as a normal trial",
    "controller.differentiable.sampling": "`softmax` mixes every candidate (DARTS); `gumbel` trains one drawn "
                                          "cell per step (GDAS)",
    "controller.differentiable.tau_start": "Gumbel temperature at the start",
    "controller.differentiable.tau_end": "Gumbel temperature at the end",
}


def rows(cls: type, prefix: str, skip: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(dotted field, type, default) of the dataclass `cls` and of the dataclasses nested in it."""
    hints = typing.get_type_hints(cls)
    found = []
    for spec in dataclasses.fields(cls):
        if not spec.init or spec.name in skip:
            continue
        dotted = f"{prefix}{spec.name}"
        annotation = hints[spec.name]
        if spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            default = dataclasses.MISSING
        if dataclasses.is_dataclass(annotation):
            found.append((dotted, "mapping", ""))
            found += rows(annotation, dotted + ".")
        else:
            found.append((dotted, expectation(annotation), show(default)))
    return found


def show(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if dataclasses.is_dataclass(value):
        return ""
    if isinstance(value, (dict, list, tuple)):
        return f"`{json.dumps(value)}`"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def table(entries: list[tuple[str, str, str]], *, meaning_key=lambda dotted: dotted) -> list[str]:
    lines = ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for dotted, kind, default in entries:
        lines.append(f"| `{dotted}` | {kind} | {default} | {MEANINGS[meaning_key(dotted)]} |")
    return lines


def controller_rows(name: str) -> list[tuple[str, str, str]]:
    settings = controller_settings(name)
    parameters = inspect.signature(CONTROLLERS[name].__init__).parameters
    hints = typing.get_type_hints(CONTROLLERS[name].__init__)
    return [(key, expectation(hints.get(key, type(default))), show(default)) for key, default in settings.items()
            if key not in COMMON_CONTROLLER_SETTINGS and key in parameters]


def documented_fields() -> list[str]:
    """Every dotted field the reference documents: the keys MEANINGS must hold, no more, no fewer."""
    keys = [d for d, _, _ in rows(ExperimentConfig, "", skip=("source",))]
    keys += [f"evaluator.{d}" for d, _, _ in rows(ProxyConfig, "")]
    keys += ["evaluator.custom"] + [f"evaluator.custom.{d}" for d, _, _ in rows(CustomEvaluatorConfig, "")
                                    if d != "custom"]
    keys += [f"evaluator.simulated.{d}" for d, _, _ in rows(SimulatedEvaluatorConfig, "")]
    for name in [*CONTROLLERS, "differentiable"]:
        keys.append(f"controller.{name}")
        entries = rows(DifferentiableConfig, "") if name == "differentiable" else controller_rows(name)
        keys += [f"controller.{name}.{d}" for d, _, _ in entries]
    return keys


def render() -> str:
    """The whole reference page."""
    from attnas.controllers import objective

    top = rows(ExperimentConfig, "", skip=("source",))
    lines = [
        "# The experiment file: reference",
        "",
        "<!-- Generated by docs/experiment_reference.py from the schema; do not edit by hand. -->",
        "",
        "An experiment is one YAML file (examples: experiments/configs/). Unknown keys are errors with a "
        "did-you-mean; every error names the file and the dotted field. `attnas search FILE --dry-run` checks a "
        "file and prints its plan.",
        "",
        "## Top level",
        "",
        *table(top),
        "",
        "## evaluator: the built-in proxy trainer",
        "",
        *table(rows(ProxyConfig, "evaluator.")),
        "",
        "## evaluator: a user's evaluator",
        "",
        "With `custom:` the section names a user's evaluator instead (see docs/evaluators.md); the proxy "
        "trainer's fields above do not apply.",
        "",
        *table([("evaluator.custom", "a string", "required")]
               + [(f"evaluator.{d}", k, v) for d, k, v in rows(CustomEvaluatorConfig, "") if d != "custom"],
               meaning_key=lambda dotted: dotted.replace("evaluator.", "evaluator.custom.").removesuffix(".custom")),
        "",
        "## evaluator: the simulated evaluator",
        "",
        "With `kind: simulated` trials train nothing: each reports, per epoch, a deterministic accuracy computed from "
        "the cell (docs/design.md, *The simulated evaluator*), for scale tests and benchmarks of the search itself.",
        "",
        *table(rows(SimulatedEvaluatorConfig, "evaluator."),
               meaning_key=lambda dotted: dotted.replace("evaluator.", "evaluator.simulated.")),
        "",
        "## controller: each controller's settings",
        "",
        "`controller: {name: NAME, ...}`; the settings below go beside `name`. The controller's seed is the "
        "experiment's `seed`, its objective the experiment's `objective`.",
        "",
    ]
    for name in [*CONTROLLERS, "differentiable"]:
        entries = rows(DifferentiableConfig, "") if name == "differentiable" else controller_rows(name)
        lines += [f"### `{name}`", "", MEANINGS[f"controller.{name}"][0].upper() + MEANINGS[f"controller.{name}"][1:]
                  + ".", ""]
        if entries:
            lines += table(entries, meaning_key=lambda dotted, name=name: f"controller.{name}.{dotted}")
        else:
            lines.append("No settings of its own.")
        lines.append("")
    lines += ["## Objective forms", "", "```", inspect.getdoc(objective).split("\n\n", 1)[1].strip(), "```", ""]
    return "\n".join(lines)


def main() -> None:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
