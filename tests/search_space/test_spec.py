"""CellSpec: parsing, round trips, canonical form and hashing, and every validation error's exact message."""
import json

import numpy as np
import pytest

from attnas.search_space import CellSpec, SpecError, load_zoo, zoo_names
from tests.search_space.strategies import relabelled

# Golden hashes: a change here renames every cell in every user's history. Change only on purpose.
GOLDEN = {
    "cbam": "275808d481a07747",
    "double_attention": "d04471525fd1a48c",
    "non_local": "35f4a2e89279777c",
    "spatial_temporal": "63af2980618a200a",
    "squeeze_excitation": "55c932d721826e56",
}


def test_zoo_has_the_reference_cells():
    assert set(zoo_names()) == set(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_zoo_hashes_are_stable(name):
    assert load_zoo(name).hash == GOLDEN[name]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_zoo_round_trips_through_yaml_and_json(name):
    spec = load_zoo(name)
    again = CellSpec.from_yaml(spec.to_yaml())
    assert again == spec and again.hash == spec.hash
    assert CellSpec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json())["nodes"] == spec.to_dict()["nodes"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_canonical_form_ignores_names_and_order(name):
    spec = load_zoo(name)
    rng = np.random.default_rng(0)
    for _ in range(10):
        other = relabelled(spec, rng)
        assert other.hash == spec.hash
        assert other.canonical().to_dict() == spec.canonical().to_dict()
        assert other.same_cell(spec)


def test_defaults_are_filled_in_and_explicit_in_output():
    spec = CellSpec.from_dict({"width": 0.5, "nodes": {"a": {"op": "dot_attention", "inputs": {
        "query": "input", "key": "input"}, "dim": "spatial"}}, "output": ["a"]})
    assert spec.nodes[0].attr_map == {"dim": "spatial", "similarity": "softmax", "heads": 1}


def test_commutative_ports_do_not_change_the_cell():
    def cell(a, b):
        return CellSpec.from_dict({"width": 0.5, "nodes": {
            "s": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
            "t": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "temporal"},
            "c": {"op": "combine", "inputs": {"a": a, "b": b}, "mode": "mul"}}, "output": ["c"]})
    assert cell("s", "t") == cell("t", "s")


def test_non_commutative_ports_change_the_cell():
    def cell(query, key):
        return CellSpec.from_dict({"width": 0.5, "nodes": {
            "s": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
            "d": {"op": "dot_attention", "inputs": {"query": query, "key": key}, "dim": "temporal"}},
            "output": ["d"]})
    assert cell("s", "input").hash != cell("input", "s").hash


def test_width_is_part_of_the_hash():
    spec = load_zoo("non_local").to_dict()
    other = dict(spec, width=0.5)
    assert CellSpec.from_dict(spec).hash != CellSpec.from_dict(other).hash


def test_name_is_not_part_of_the_hash():
    spec = load_zoo("non_local").to_dict()
    assert CellSpec.from_dict(dict(spec, name="renamed")).hash == CellSpec.from_dict(spec).hash


def test_shared_node_differs_from_two_copies():
    shared = CellSpec.from_dict({"width": 0.5, "nodes": {
        "m": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
        "c": {"op": "combine", "inputs": {"a": "m", "b": "m"}}}, "output": ["c"]})
    copies = CellSpec.from_dict({"width": 0.5, "nodes": {
        "m": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
        "n": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
        "c": {"op": "combine", "inputs": {"a": "m", "b": "n"}}}, "output": ["c"]})
    assert shared.hash != copies.hash and not shared.same_cell(copies)


def _spec(nodes, output=("z",), width=0.25):
    return {"width": width, "nodes": nodes, "output": list(output)}


A2 = {"g": {"op": "gather", "inputs": {"x": "input"}, "dim": "spatiotemporal"},
      "z": {"op": "distribute", "inputs": {"bag": "g", "x": "input"}, "dim": "spatiotemporal"}}

ERRORS = {
    "unknown op": (
        _spec({"z": {"op": "conv", "inputs": {"x": "input"}}}),
        "cell spec: node 'z': unknown op 'conv'; known ops: dot_attention, map_attention, gather, distribute, "
        "combine"),
    "unknown port": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "input", "y": "input"}, "dim": "spatial"}}),
        "cell spec: node 'z': op 'map_attention' has no port 'y'; its ports are: x"),
    "missing port": (
        _spec({"z": {"op": "dot_attention", "inputs": {"query": "input"}, "dim": "spatial"}}),
        "cell spec: node 'z': port 'key' is missing; op 'dot_attention' needs ports: query, key"),
    "bag into map port": (
        _spec({"g": A2["g"], "z": {"op": "distribute", "inputs": {"bag": "g", "x": "g"}, "dim": "spatiotemporal"}}),
        "cell spec: node 'z': port 'x' takes a map, but 'g' is a bag"),
    "map into bag port": (
        _spec({"z": {"op": "distribute", "inputs": {"bag": "input", "x": "input"}, "dim": "spatial"}}),
        "cell spec: node 'z': port 'bag' takes a bag, but 'input' is a map"),
    "later node (cycle)": (
        _spec({"a": {"op": "map_attention", "inputs": {"x": "z"}, "dim": "spatial"},
               "z": {"op": "map_attention", "inputs": {"x": "a"}, "dim": "spatial"}}),
        "cell spec: node 'a': port 'x' refers to 'z', which is not an earlier node; a port takes 'input' or a node "
        "listed before it (no cycles)"),
    "self reference": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "z"}, "dim": "spatial"}}),
        "cell spec: node 'z': port 'x' refers to 'z', which is not an earlier node; a port takes 'input' or a node "
        "listed before it (no cycles)"),
    "missing node": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "q"}, "dim": "spatial"}}),
        "cell spec: node 'z': port 'x' refers to unknown node 'q'; expected 'input' or an earlier node"),
    "dim mismatch": (
        _spec({"g": A2["g"], "z": {"op": "distribute", "inputs": {"bag": "g", "x": "input"}, "dim": "spatial"}}),
        "cell spec: node 'z': dim 'spatial' does not match dim 'spatiotemporal' of its gather 'g'; a distribute "
        "must use its gather's dim"),
    "unconsumed bag": (
        _spec({"g": A2["g"], "z": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"}}),
        "cell spec: node 'g': its bag is consumed by no distribute; every gather must feed a distribute"),
    "attribute value outside the vocabulary": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial", "gate": "relu"}}),
        "cell spec: node 'z': attribute 'gate': expected one of 'sigmoid', 'softmax', got 'relu'"),
    "unknown attribute": (
        _spec({"z": {"op": "combine", "inputs": {"a": "input", "b": "input"}, "heads": 2}}),
        "cell spec: node 'z': op 'combine' has no attribute 'heads'; its attributes are: mode"),
    "attribute for another dim": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "channel", "kernel": 3}}),
        "cell spec: node 'z': attribute 'kernel' does not apply to dim 'channel'; it applies to dims: spatial, "
        "temporal, spatiotemporal"),
    "missing dim": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "input"}}}),
        "cell spec: node 'z': attribute 'dim' is missing; expected one of 'spatial', 'temporal', 'spatiotemporal', "
        "'channel'"),
    "even kernel": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial", "kernel": 4}}),
        "cell spec: node 'z': attribute 'kernel': expected an odd integer from 1 to 15, got 4"),
    "empty output": (
        _spec({"z": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"}}, output=()),
        "cell spec: output is empty; expected a list of one or more map nodes, got []"),
    "bag in output": (
        _spec(A2, output=("z", "g")),
        "cell spec: output: 'g' is a bag; the output takes map nodes only"),
    "unreachable node": (
        _spec({"a": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"},
               "z": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "temporal"}}),
        "cell spec: node 'a' does not reach the output (it feeds nothing); every node must feed the output, "
        "directly or through other nodes"),
    "unknown top-level field": (
        dict(_spec(A2), nodez={}),
        "cell spec: unknown field 'nodez'; expected fields: name, width, nodes, output"),
    "bad width": (
        _spec(A2, width=0),
        "cell spec: width: expected a number in (0, 4] (inner width = width * channels), got 0"),
    "reserved node name": (
        _spec({"input": {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial"}}, output=("input",)),
        "cell spec: node 'input': a node name must be an identifier other than 'input' and 'output'"),
    "not a mapping": (
        ["width", 1],
        "cell spec: expected a mapping with fields name, width, nodes, output, got a list"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_validation_errors_name_node_port_and_expectation(case):
    data, message = ERRORS[case]
    with pytest.raises(SpecError) as error:
        CellSpec.from_dict(data)
    assert str(error.value) == message


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "cell.yaml"
    path.write_text("width: 0.25\nnodes:\n  z: {op: conv, inputs: {x: input}}\noutput: [z]\n")
    with pytest.raises(SpecError, match=rf"^{path}: node 'z': unknown op 'conv'"):
        CellSpec.from_yaml(str(path))


MALFORMED = {
    "syntax error": ("width: [0.25\nnodes: {", "not valid YAML: .* at line 2, column 6"),
    "tab indentation": ("nodes:\n\ta: 1\n", "not valid YAML: "),
    "wrong type": ("- 1\n- 2\n", "expected a mapping with fields name, width, nodes, output, got a list"),
    "scalar": ("42\n", "expected a mapping .*, got int 42"),
    "empty": ("", "expected a mapping .*, got nothing"),
    "nodes as list": ("width: 0.25\nnodes: [a, b]\noutput: [a]\n", "nodes: expected a non-empty mapping"),
    "python object tag": ("!!python/object:os.system {}\n", "not valid YAML: "),
    "deeply nested": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "YAML nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_yaml_gets_one_line_error(tmp_path, case):
    text, pattern = MALFORMED[case]
    path = tmp_path / "cell.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=rf"^{path}: {pattern}") as error:
        CellSpec.from_yaml(str(path))
    assert "\n" not in str(error.value)


def test_huge_yaml_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("x: " + "a" * (2 << 20))
    with pytest.raises(SpecError, match="too large"):
        CellSpec.from_yaml(str(path))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        CellSpec.from_yaml(str(tmp_path / "nope.yaml"))
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(SpecError, match="is a folder"):
        CellSpec.from_yaml(str(folder))


def test_spec_is_immutable():
    spec = load_zoo("non_local")
    with pytest.raises(AttributeError):
        spec.width = 0.5
