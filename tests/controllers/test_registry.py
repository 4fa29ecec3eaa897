"""The controller registry: names and settings are checked, with errors that list what is valid."""
from __future__ import annotations

import pytest

from attnas.controllers import CONTROLLERS, controller_settings, create_controller
from attnas.controllers.nasbench201 import NASBench201Space
from attnas.search_space import AttnasError


def test_registry_holds_the_four_controllers():
    assert list(CONTROLLERS) == ["random", "evolution", "bayesian", "tpe"]
    for name, cls in CONTROLLERS.items():
        assert cls.name == name


def test_unknown_controller_lists_registered_ones():
    with pytest.raises(AttnasError, match=r"controller 'evolutoin' is unknown \(did you mean 'evolution'\?\); "
                                          r"registered: random, evolution, bayesian, tpe"):
        create_controller("evolutoin", space=NASBench201Space())


def test_unknown_setting_is_named_with_valid_ones():
    with pytest.raises(AttnasError) as error:
        create_controller("evolution", space=NASBench201Space(), populaton_size=10)
    message = str(error.value)
    assert "controller.populaton_size: unknown field (did you mean 'population_size'?)" in message
    assert "expected one of: population_size, sample_size, mutation_attempts (controller 'evolution')" in message


def test_settings_are_validated_and_listed():
    assert controller_settings("evolution")["population_size"] == 10
    with pytest.raises(AttnasError, match="sample_size .* must not exceed population_size"):
        create_controller("evolution", space=NASBench201Space(), population_size=4, sample_size=5)
    with pytest.raises(AttnasError, match="kernel: 'cubic' is unknown; expected one of rbf, linear"):
        create_controller("bayesian", space=NASBench201Space(), kernel="cubic")
    with pytest.raises(AttnasError, match="seed must be a whole number >= 0"):
        create_controller("random", space=NASBench201Space(), seed=-1)
    with pytest.raises(AttnasError, match="missing setting 'space'"):
        create_controller("random")


def test_objective_may_be_given_as_yaml_data():
    controller = create_controller("random", space=NASBench201Space(), objective={"budget": {"macs": "2e8"}})
    assert controller.objective.budget == {"macs": 2e8}
