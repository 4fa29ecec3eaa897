"""A search records which input path each trial took (frozen-front features or clips, and why) in its attributes."""
import pytest

from attnas.experiments.cli import main
from attnas.experiments.run_folder import open_run
from tests.experiments.tiny import TINY, write_tiny

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("overrides, path", [
    ({}, "cached"),
    ({"freeze_front": False}, "clips: the front is not frozen"),
    ({"augment": "flip"}, "clips: augmentation is on (flip)"),
    ({"feature_cache_budget_mb": 0.01}, "clips: the features need"),
])
def test_search_records_the_feature_path_of_each_trial(tmp_path, ray_module, overrides, path):
    evaluator = {**TINY["evaluator"], "data": {**TINY["evaluator"]["data"], "cache_dir": str(tmp_path / "cache")},
                 "pretrain_epochs": 1, **overrides}
    config_path = write_tiny(tmp_path, evaluator=evaluator, budget={"trials": 1}, concurrency=1)
    assert main(["search", config_path, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    records = open_run(tmp_path / "runs" / "tiny").history().trials()
    assert len(records) == 1 and records[0].attrs["feature_path"].startswith(path), records[0].attrs
