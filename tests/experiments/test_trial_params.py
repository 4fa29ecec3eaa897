"""Trial params in the study are the space's named choices, so optuna-dashboard's importance, parallel-coordinate
and slice plots and its best-trial card read `0.op: dot_attention` rather than `0.op: 1`."""
import optuna
import pytest

from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.trial_params import categorical_params
from attnas.search_space import CellSpec, load_space, load_zoo

SPACE = load_space("small")


def test_a_cell_becomes_named_choices():
    non_local = load_zoo("non_local")
    params, distributions = named(non_local)
    assert {k: v for k, v in params.items() if v != "-"} == {
        "width": "0.25", "0.op": "dot_attention", "0.dot_attention.dim": "spatiotemporal", "0.map0": "input",
        "0.map1": "input"}
    for name, value in params.items():
        assert distributions[name].choices[distributions[name].to_internal_repr(value)] == value
    double = load_zoo("double_attention")
    params, _ = named(double)
    assert (params["0.op"], params["1.op"], params["1.bag"], params["1.map1"]) == \
        ("gather", "distribute", "slot 0", "-")  # distribute reads the bag slot 0 gathered; no second map
    # the names decode back to the same cell
    indices = [SPACE.vector_choices()[i].index(params[name]) for i, name in enumerate(SPACE.vector_names())]
    assert SPACE.decode_vector(indices).hash == double.hash


def named(cell):
    return categorical_params(SPACE.vector_names(), SPACE.encode_vector(cell), SPACE.vector_cardinalities(),
                              SPACE.vector_choices())


def test_without_named_choices_the_category_numbers_are_kept():
    params, distributions = categorical_params(["a", "b"], [2, 0], [3, 2])
    assert params == {"a": 2, "b": 0} and distributions["a"].choices == (0, 1, 2)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    run = write_synthetic_history(tmp_path_factory.mktemp("runs"), name="params", trials=16)
    return run.history().study


def test_the_study_holds_named_params_that_optuna_can_rank(study):
    best = study.best_trial
    cell = CellSpec.from_dict(best.user_attrs["cell"]).canonical()
    assert best.params["0.op"] == cell.nodes[0].op
    ops = {"-", *SPACE.ops}
    assert all(t.params["1.op"] in ops for t in study.trials)
    importances = optuna.importance.get_param_importances(study)
    assert importances and set(importances) <= set(SPACE.vector_names())
