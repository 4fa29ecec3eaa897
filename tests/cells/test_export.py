"""Exported cells (standalone source and torch.export program) run where attnas is not importable and compute what
the package-built cell computes with the same weights."""
import ast
import copy
import importlib.util
import io
import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from attnas.cells import build
from attnas.cells.ops import OPS
from attnas.cells.export import export, export_program
from attnas.search_space import CellSpec, load_space, load_zoo, zoo_names
from attnas.search_space.vocabulary import bag_port, get_operation, makes_bag

CHANNELS = 16
SHAPE = (2, CHANNELS, 3, 5, 6)
# Another batch, clip length and frame size: the program's N, T, H, W are dynamic (torch.export's range: sizes >= 2).
OTHER_SHAPE = (3, CHANNELS, 2, 4, 7)
GATHER_CELL = """
width: 0.5
nodes:
  g: {op: gather, inputs: {x: input}, dim: spatial, descriptors: 0.5}
  d: {op: distribute, inputs: {bag: g, x: input}, dim: spatial}
  a: {op: dot_attention, inputs: {query: d, key: input}, dim: temporal, similarity: dot, heads: 2}
  m: {op: combine, inputs: {a: a, b: input}, mode: add}
output: [m, d]
"""

# Node names that are attributes of nn.ModuleDict, and two heads at an odd inner width (3 of 16 channels): issue 20.
CLASHING_CELL = """
width: 0.1875
nodes:
  keys: {op: dot_attention, inputs: {query: input, key: input}, dim: spatial, similarity: scaled_softmax, heads: 2}
  forward: {op: map_attention, inputs: {x: keys}, dim: temporal, gate: softmax, pooling: avg, kernel: 3}
  training: {op: combine, inputs: {a: forward, b: input}, mode: mul}
output: [training, keys]
"""


def specs():
    cells = {name: load_zoo(name) for name in zoo_names()}
    rng = np.random.default_rng(7)
    space = load_space("default")
    cells.update({f"sampled{i}": space.sample(rng) for i in range(3)})
    cells["gather_cell"] = CellSpec.from_yaml(GATHER_CELL)
    cells["clashing_cell"] = CellSpec.from_yaml(CLASHING_CELL)
    return cells


SPECS = specs()


def randomised_cell(spec, seed):
    cell = build(spec, CHANNELS)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(cell.parameters()) + [cell.norm.running_mean]:
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
        cell.norm.running_var.uniform_(0.5, 1.5, generator=generator)
    return cell


def isolated_python():
    """A command running the venv's Python with torch importable but not attnas (no site processing, so the editable
    install's .pth finder is not loaded; torch's site-packages put back on the path)."""
    site_packages = str(Path(torch.__file__).resolve().parent.parent)
    env = {"PYTHONPATH": site_packages, "PYTHONNOUSERSITE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-S"], env


RUNNER = textwrap.dedent("""
    import importlib, json, sys
    import torch
    torch.set_num_threads(1)
    for package in ("attnas", "search_space", "cells", "evaluators", "controllers", "experiments"):
        try:
            importlib.import_module(package)
        except ModuleNotFoundError:
            pass
        else:
            sys.exit(f"{package} is importable: the isolation failed")
    for name in json.load(open("names.json")):
        module = importlib.import_module("cell_" + name)
        cell = module.AttentionCell()
        cell.load_state_dict(torch.load(name + ".weights.pt", weights_only=True), strict=True)
        x, other = torch.load("inputs.pt", weights_only=True)
        results = {"eval": cell.eval()(x)}
        results["train"] = cell.train()(x)      # after eval: a training step moves the running statistics
        program = torch.export.load(name + ".pt2").module()
        results["program"] = program(x)
        results["program_other"] = program(other)
        torch.save(results, name + ".out.pt")
    print("ran", len(json.load(open("names.json"))))
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Export every cell, run them all in one isolated subprocess, and return its outputs with the package cells."""
    folder = tmp_path_factory.mktemp("exported")
    inputs = (torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)),
              torch.randn(OTHER_SHAPE, generator=torch.Generator().manual_seed(1)))
    torch.save(inputs, folder / "inputs.pt")
    cells = {}
    for index, (name, spec) in enumerate(SPECS.items()):
        cells[name] = randomised_cell(spec, index)
        export(spec, folder / f"cell_{name}.py", channels=CHANNELS)
        torch.save(cells[name].state_dict(), folder / f"{name}.weights.pt")
        export_program(spec, folder / f"{name}.pt2", channels=CHANNELS, example_shape=SHAPE,
                       weights=cells[name].state_dict())
    (folder / "names.json").write_text(json.dumps(list(SPECS)))
    (folder / "runner.py").write_text(RUNNER)
    command, env = isolated_python()
    done = subprocess.run([*command, "runner.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = {name: torch.load(folder / f"{name}.out.pt", weights_only=True) for name in SPECS}
    return folder, cells, inputs, outputs


def test_isolated_python_cannot_import_attnas(tmp_path):
    command, env = isolated_python()
    for probe in ("import torch", "import search_space", "import cells"):
        done = subprocess.run([*command, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
        if probe == "import torch":
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, probe


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SPECS))
def test_exported_source_and_program_match_the_package_cell(exported, name):
    folder, cells, (x, other), outputs = exported
    cell = cells[name]
    result = outputs[name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)    # as in the subprocess, so that reductions run in the same order
    try:
        expected_eval = cell.eval()(x)
        expected_train = copy.deepcopy(cell).train()(x)   # a copy: a training step moves the running statistics
        expected_other = cell(other)
    finally:
        torch.set_num_threads(threads)
    assert (expected_eval - x).abs().max() > 1e-2     # a non-trivial cell: BatchNorm scale is non-zero
    torch.testing.assert_close(result["train"], expected_train, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result["eval"], expected_eval, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result["program"], expected_eval, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result["program_other"], expected_other, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_exported_source_imports_only_torch_and_documents_the_spec(exported):
    folder = exported[0]
    for name, spec in SPECS.items():
        tree = ast.parse((folder / f"cell_{name}.py").read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported == {"torch"}, name
        classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
        assert classes[0] == "Op" and classes[-1] == "AttentionCell", name
        assert set(classes[1:-1]) == {OPS[node.op].__name__ for node in spec.nodes}, name
        docstring = ast.get_docstring(tree)
        assert f"Cell hash: {spec.hash}" in docstring
        documented = CellSpec.from_yaml(textwrap.dedent(docstring.split("Spec:\n", 1)[1]))
        assert documented.same_cell(spec) and documented.hash == spec.hash


def test_exported_state_dict_keys_equal_the_package_cell(tmp_path):
    for name, spec in SPECS.items():
        path = export(spec, tmp_path / f"cell_{name}.py", channels=CHANNELS)
        namespace = {}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        exported = namespace["AttentionCell"]()
        package = build(spec, CHANNELS)
        assert list(exported.state_dict()) == list(package.state_dict()), name
        exported.load_state_dict(package.state_dict(), strict=True)
        x = torch.randn(1, CHANNELS, 2, 3, 3)
        assert torch.equal(exported(x), x)    # identity at initialisation, as the package cell


def test_state_dict_keys_name_the_nodes_and_stay_put_for_the_zoo_cells():
    """Zoo cells keep `ops.<node name>.<layer>` keys; a node named after a ModuleDict attribute is `ops.node:<name>`."""
    for name in zoo_names():
        spec = load_zoo(name)
        keys = [key for key in build(spec, CHANNELS).state_dict() if key.startswith("ops.")]
        assert {key.split(".")[1] for key in keys} <= {node.name for node in spec.nodes}, name
    keys = {key.split(".")[1] for key in build(SPECS["clashing_cell"], CHANNELS).state_dict() if key.startswith("ops.")}
    assert keys == {"node:keys", "node:forward", "node:training"}


# Values for the attributes whose choices the vocabulary leaves open (numbers); heads 2 pads the inner width 3.
OPEN_VALUES = {"heads": (1, 2), "kernel": (3,), "reduction": (2,), "descriptors": (0.5,)}


def op_cells():
    """Every registered op (cells.ops.OPS) with every combination of its attributes' choices, in the smallest cell
    that holds it: on the cell input, after a gather when it takes a bag, before a distribute when it makes one; at
    an inner width of 3 (0.1875 x 16 channels), so every port is projected and two heads are padded."""
    cells = {}
    for op in OPS:
        operation = get_operation(op)
        dims = operation.attributes["dim"].values if "dim" in operation.attributes else (None,)
        for dim in dims:
            attributes = [a for a in operation.applicable(dim) if a.name != "dim"]
            options = [a.values if a.values is not None else OPEN_VALUES[a.name] for a in attributes]
            for values in itertools.product(*options):
                node = {"op": op, "inputs": {port: "input" for port in operation.ports},
                        **({"dim": dim} if dim else {}), **{a.name: v for a, v in zip(attributes, values)}}
                nodes = {}
                if bag_port(op):
                    nodes["bag"] = {"op": "gather", "inputs": {"x": "input"}, "dim": dim, "descriptors": 0.5}
                    node["inputs"][bag_port(op)] = "bag"
                nodes["node"] = node
                if makes_bag(op):
                    nodes["spread"] = {"op": "distribute", "inputs": {"bag": "node", "x": "input"}, "dim": dim}
                output = "spread" if makes_bag(op) else "node"
                name = "-".join(str(part) for part in (op, dim, *values) if part is not None)
                cells[name] = CellSpec.from_dict({"width": 0.1875, "nodes": nodes, "output": [output]})
    return cells


SCRIPTED = {**op_cells(), **{name: SPECS[name] for name in ("non_local", "double_attention", "cbam", "gather_cell",
                                                           "clashing_cell", "sampled0", "sampled1")}}


def import_exported(path):
    """The exported file as a module imported from its file (torch.jit.script reads the source of what it compiles)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_op_and_every_choice_of_its_attributes_is_covered_by_the_scripting_test():
    ops = {node.op for spec in SCRIPTED.values() for node in spec.nodes}
    assert ops == set(OPS)
    for op in OPS:
        for attribute in get_operation(op).attributes.values():
            if attribute.values is not None:
                used = {node.attr(attribute.name) for spec in SCRIPTED.values() for node in spec.nodes
                        if node.op == op and attribute.name in node.attr_map}
                assert used == set(attribute.values), (op, attribute.name)


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")  # the users' choice
@pytest.mark.parametrize("name", list(SCRIPTED))
def test_exported_module_compiles_with_torch_jit_script_and_computes_what_eager_and_the_package_compute(
        tmp_path, name):
    spec = SCRIPTED[name]
    cell = randomised_cell(spec, seed=list(SCRIPTED).index(name))
    module_name = "cell_" + re.sub(r"\W", "_", name)
    exported = import_exported(export(spec, tmp_path / f"{module_name}.py", channels=CHANNELS))
    module = exported.AttentionCell()
    module.load_state_dict(cell.state_dict(), strict=True)
    scripted = torch.jit.script(copy.deepcopy(module))
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    eager = copy.deepcopy(module)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    # eval first (running statistics), then train (batch statistics, and the running ones move)
    for training in (False, True):
        expected = cell.train(training)(x)
        if not training:
            assert (expected - x).abs().max() > 1e-2     # a non-trivial cell: BatchNorm scale is non-zero
        for result in (eager.train(training)(x), scripted.train(training)(x), loaded.train(training)(x)):
            torch.testing.assert_close(result, expected, rtol=0, atol=0)
    for other in (eager, scripted, loaded):
        torch.testing.assert_close(other.state_dict()["norm.running_mean"], cell.norm.running_mean, rtol=0, atol=0)
    assert scripted.code.count("def forward") == 1 and "ops" in scripted.code
    with pytest.raises(torch.jit.Error, match=f"cell input: expected {CHANNELS} channels, got 3"):
        scripted(torch.zeros(1, 3, 2, 2, 2))


def test_class_name_may_not_shadow_what_the_file_defines(tmp_path):
    from attnas.cells.errors import CellBuildError

    for taken in ("Op", "DotAttention", "to_groups", "nn"):
        with pytest.raises(CellBuildError, match=f"class_name: expected a Python identifier other .*got '{taken}'"):
            export(SPECS["non_local"], tmp_path / "cell.py", channels=CHANNELS, class_name=taken)
    path = export(SPECS["non_local"], tmp_path / "cell.py", channels=CHANNELS, class_name="NonLocal")
    assert hasattr(import_exported(path), "NonLocal")
