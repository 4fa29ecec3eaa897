"""The configuration of a proxy trial: data, backbone, placements, schedule, seed and resources."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from attnas.evaluators.data.synthetic import DEFAULT_TASK, TASKS
from attnas.evaluators.data.video_folder import LAYOUTS, FrameSampling
from attnas.search_space import AttnasError
from attnas.search_space.schema import parse

OPTIMIZERS = ("sgd", "adamw")
# The quick-start proxy I3D for 3x16x16x16 clips: stem 1x3x3 (no temporal mixing) with spatial stride 2, then
# conv2 (16 channels, spatial stride 2) and conv3 (32 channels): maps 16x8x8, 16x4x4, 16x4x4; about 15 M
# multiply-adds a clip. Four 3x3x3 convolutions give it a temporal receptive field of 9 frames, less than the 13
# frames between the first and last objects of the default task, so the backbone alone cannot relate them; a cell
# after conv2 can, with conv3 after it to read the relation out.
QUICKSTART_PROXY = {"stem_width": 16, "widths": (16, 32), "strides": ((1, 2, 2), (1, 1, 1)), "stem_stride": (1, 2, 2),
                    "stem_kernel": (1, 3, 3)}
SCHEDULES = ("onecycle", "cosine", "constant")
AUGMENTATIONS = ("none", "flip")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


def _raise_first(checks: list[tuple[bool, str, str, Any]], section: str) -> None:
    for ok, name, expected, value in checks:
        if not ok:
            raise AttnasError(f"{section}: {name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where the clips come from: a synthetic task (`task`, its `fields`, split sizes, data `seed`), or, when
    `video_root` is set, a `VideoFolder` in `video_layout` with `sampling`. `cache_dir` None = the machine's
    default cache (~/.cache/attnas or $ATTNAS_CACHE_DIR); `use_cache` False generates in memory every time.
    The `video_*` options and `drop_empty_classes` are `VideoFolder`'s (fold, validation fraction, split-list
    folder, annotation file, decoding processes)."""

    task: str = DEFAULT_TASK
    fields: dict[str, Any] = field(default_factory=dict)
    train_size: int = 2000
    validation_size: int = 1000
    test_size: int = 1000
    seed: int = 0
    video_root: str | None = None
    video_layout: str = "folder"
    sampling: FrameSampling = field(default_factory=FrameSampling)
    cache_dir: str | None = None
    use_cache: bool = True
    video_fold: int = 1
    video_validation_fraction: float = 0.1
    video_split_dir: str | None = None
    video_annotations: str | None = None
    video_workers: int | None = None
    drop_empty_classes: bool = False

    def __post_init__(self) -> None:
        _raise_first([(self.video_root is not None or self.task in TASKS, "task", f"one of {', '.join(TASKS)}",
                       self.task),
                      (self.video_layout in LAYOUTS, "video_layout", f"one of {', '.join(sorted(LAYOUTS))}",
                       self.video_layout),
                      (self.train_size >= 1, "train_size", ">= 1", self.train_size),
                      (self.validation_size >= 1, "validation_size", ">= 1", self.validation_size),
                      (self.test_size >= 1, "test_size", ">= 1", self.test_size),
                      (self.seed >= 0, "seed", ">= 0", self.seed)], "data")


@dataclass(frozen=True)
class ProxyConfig:
    """A proxy trial: `backbone` (any cells backbone, built with `backbone_args`; for proxy_i3d the input shape
    follows the data), cells inserted `at` the named placements, trained `epochs` with `optimizer`/`lr`/`schedule`,
    from `seed`, on `device` ("auto": a GPU if the trial has one, else CPU) with `threads` CPU threads (None: the
    CPUs this process may run on). `measure_latency` times one forward pass of a batch of `latency_batch`.
    `pretrain_epochs` > 0: every trial starts from the backbone alone trained that many epochs at `pretrain_seed`
    (once per machine, see evaluators.pretrained), the cell inserted at identity; 0 starts from random weights.
    With pretraining, `freeze_front` keeps the layers up to the first placement as pretrained (weights and BatchNorm
    statistics): only the cell and the layers after it train.
    `repeats` > 1 trains that many models at seeds `seed`, `seed` + 1, ... in lockstep and reports the mean of every
    metric (per epoch and final): a less noisy reward for the price of `repeats` trainings.
    `feature_cache`: with the front frozen and no augmentation, train from the front's output computed once per
    machine (evaluators.features; same results, less work), unless it needs more than `feature_cache_budget_mb` of
    disk. `validation_subset` > 0: every epoch but the last is scored on that many validation clips (a fixed
    subset; ASHA's per-epoch signal), the last on the whole split (the reward); 0 scores the whole split every epoch.
    `augment` "flip": training clips mirrored left-right at random (per seed, epoch and clip).
    `precision`: "auto" is bf16 autocast on a GPU and fp32 on CPU; "bf16", "fp16" (with a gradient scaler) or
    "fp32" force one."""

    data: DataConfig = field(default_factory=DataConfig)
    backbone: str = "proxy_i3d"
    backbone_args: dict[str, Any] = field(default_factory=lambda: dict(QUICKSTART_PROXY))
    at: tuple[str, ...] = ("conv2:0",)
    epochs: int = 4
    batch_size: int = 32
    eval_batch_size: int = 250
    optimizer: str = "adamw"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "onecycle"
    warmup: float = 0.2
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    measure_latency: bool = True
    latency_batch: int = 1
    repeats: int = 1
    pretrain_epochs: int = 4
    pretrain_seed: int = 1000
    freeze_front: bool = True
    feature_cache: bool = True
    feature_cache_budget_mb: float = 4096.0
    validation_subset: int = 250
    augment: str = "none"
    precision: str = "auto"

    def __post_init__(self) -> None:
        checks = [(self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}", self.optimizer),
                  (self.schedule in SCHEDULES, "schedule", f"one of {', '.join(SCHEDULES)}", self.schedule),
                  (self.epochs >= 1, "epochs", ">= 1", self.epochs),
                  (self.batch_size >= 1, "batch_size", ">= 1", self.batch_size),
                  (self.lr > 0, "lr", "> 0", self.lr),
                  (0 <= self.momentum < 1, "momentum", "in [0, 1)", self.momentum),
                  (self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay),
                  (0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)", self.label_smoothing),
                  (self.eval_batch_size >= 1, "eval_batch_size", ">= 1", self.eval_batch_size),
                  (self.latency_batch >= 1, "latency_batch", ">= 1", self.latency_batch),
                  (self.seed >= 0 and self.pretrain_seed >= 0, "seed and pretrain_seed", ">= 0",
                   min(self.seed, self.pretrain_seed)),
                  (self.device in DEVICES or self.device.startswith("cuda:"), "device",
                   f"one of {', '.join(DEVICES)} (or cuda:N)", self.device),
                  (0 <= self.warmup < 1, "warmup", "in [0, 1)", self.warmup),
                  (self.threads is None or self.threads >= 1, "threads", ">= 1 or null", self.threads),
                  (self.repeats >= 1, "repeats", ">= 1", self.repeats),
                  (self.pretrain_epochs >= 0, "pretrain_epochs", ">= 0", self.pretrain_epochs),
                  (self.feature_cache_budget_mb >= 0, "feature_cache_budget_mb", ">= 0", self.feature_cache_budget_mb),
                  (self.validation_subset >= 0, "validation_subset", ">= 0", self.validation_subset),
                  (self.augment in AUGMENTATIONS, "augment", f"one of {', '.join(AUGMENTATIONS)}", self.augment),
                  (self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", self.precision)]
        _raise_first(checks, "proxy config")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for logs, checkpoints and the history)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, where: str = "proxy config",
                  path: str = "") -> "ProxyConfig":
        """Build from plain data (YAML/JSON) with the one config parser (search_space.schema): types checked,
        unknown keys refused with a did-you-mean, errors naming `where` and the dotted field. `at` may be one
        placement name."""
        if isinstance(data, dict) and isinstance(data.get("at"), str):
            data = {**data, "at": [data["at"]]}
        return parse(cls, data, where=where, path=path)
