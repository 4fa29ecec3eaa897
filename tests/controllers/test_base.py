"""The base controller's bookkeeping: persistence, input errors, and the promise never to import torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from attnas.controllers import Observation, create_controller
from attnas.controllers.nasbench201 import NASBench201Space
from attnas.controllers.testing import run, synthetic_values
from attnas.search_space import AttnasError, load_space

SPACE = NASBench201Space()


def test_importing_controllers_does_not_import_torch():
    code = ("import sys, controllers, controllers.testing, controllers.nasbench201\n"
            "from controllers import CONTROLLERS\n"
            "assert 'torch' not in sys.modules, 'controllers imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_save_and_restore_through_a_file(tmp_path):
    controller = create_controller("evolution", space=SPACE, seed=1, population_size=5, sample_size=2)
    run(controller, 12)
    controller.propose("running")
    path = tmp_path / "controller.json"
    controller.save(path)
    assert sorted(os.listdir(tmp_path)) == ["controller.json"]  # the temporary file was renamed, not left
    state = json.loads(path.read_text())
    assert state["format"] == "attnas.controller" and state["version"] == 1
    assert [p["trial_id"] for p in state["pending"]] == ["running"]
    assert state["observations"][0]["cell"] == SPACE.to_data(controller.observations[0].cell)
    restored = create_controller("evolution", space=SPACE, seed=1, population_size=5, sample_size=2)
    restored.restore(path)
    assert restored.state_dict() == controller.state_dict()
    assert restored.pending == controller.pending


@pytest.mark.parametrize("change, message", [
    ({"controller": "random"}, "controller is 'random' but this controller has 'evolution'"),
    ({"seed": 2}, "seed is 2 but this controller has 1"),
    ({"version": 99}, "version 99 is not supported"),
    ({"settings": {"population_size": 7, "sample_size": 2, "mutation_attempts": 50}}, "settings is"),
])
def test_load_state_dict_refuses_a_different_controller(change, message):
    controller = create_controller("evolution", space=SPACE, seed=1, population_size=5, sample_size=2)
    run(controller, 3)
    state = {**controller.state_dict(), **change}
    other = create_controller("evolution", space=SPACE, seed=1, population_size=5, sample_size=2)
    with pytest.raises(AttnasError, match=message):
        other.load_state_dict(state)


def test_restore_unreadable_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(AttnasError, match="broken.json: cannot read a controller state"):
        create_controller("random", space=SPACE).restore(path)


def test_observe_checks_its_inputs():
    controller = create_controller("random", space=SPACE, objective={"budget": {"macs": 10}})
    cell = controller.propose(0)
    with pytest.raises(AttnasError, match="trial 0: state 'done' is unknown; expected one of complete, failed"):
        controller.observe(0, cell, {"accuracy": 1, "macs": 1}, "done")
    with pytest.raises(AttnasError, match="trial 0: values lack 'macs'"):
        controller.observe(0, cell, {"accuracy": 1})
    with pytest.raises(AttnasError, match="trial 0: value 'accuracy' = 'high' is not a number"):
        controller.observe(0, cell, {"accuracy": "high", "macs": 1})
    with pytest.raises(AttnasError, match="trial 0: its cell is not in search space 'nasbench201'"):
        controller.observe(0, load_space("small").sample(np.random.default_rng(0)),
                           {"accuracy": 1, "macs": 1})
    with pytest.raises(AttnasError, match="trial id 1.5: expected a string or an integer"):
        controller.propose(1.5)
    assert controller.pending == {0: cell}
    controller.observe(0, cell, {"accuracy": 1, "macs": 1})
    assert controller.pending == {} and controller.best().trial_id == 0


def test_observing_an_unproposed_trial_blocks_its_cell():
    controller = create_controller("random", space=SPACE, seed=0)
    first = controller.propose(0)
    fresh = create_controller("random", space=SPACE, seed=0)
    fresh.observe("by hand", first, synthetic_values(SPACE, first))
    assert fresh.propose(0) != first  # same seed and state, but that cell is taken


def test_from_history_reports_bad_entries():
    with pytest.raises(AttnasError, match=r"history\[1\].cell: NAS-Bench-201 cell 'nonsense'"):
        create_controller("random", space=SPACE).from_history(SPACE, [
            {"trial_id": 0, "cell": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "values": {"accuracy": 1}},
            {"trial_id": 1, "cell": "nonsense", "values": {}}])
    cell = SPACE.sample(np.random.default_rng(0))
    rebuilt = type(create_controller("random", space=SPACE)).from_history(
        SPACE, [Observation(trial_id=0, cell=cell, values={"accuracy": 1.0})], seed=3)
    assert rebuilt.observations[0].cell == cell and rebuilt.seed == 3
