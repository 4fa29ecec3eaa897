"""A tiny experiment for end-to-end tests: a few seconds per trial on one core."""
from __future__ import annotations

from pathlib import Path

import yaml

TINY = {
    "name": "tiny",
    "space": "small",
    "controller": {"name": "random"},
    "evaluator": {
        "data": {"train_size": 64, "validation_size": 32, "test_size": 32},
        "epochs": 2, "batch_size": 16, "eval_batch_size": 32,
        "backbone_args": {"stem_width": 8, "widths": [8, 16, 16]},
    },
    "budget": {"trials": 4},
    "concurrency": 2,
    "early_stopping": {"scheduler": "none"},
}


def write_tiny(folder: Path, **changes) -> str:
    data = {**TINY, **changes}
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)
