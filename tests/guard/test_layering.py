"""The house rules on imports, read from the source (every import statement, inside functions too):
search_space <- cells <- evaluators <- experiments and search_space <- controllers <- experiments, nothing upward;
no torch in search_space or controllers; the dashboard (a view) never imports the evaluators; nothing imports the
bare top-level names (cells, experiments, ...); the parts never import the public API package above them; and no
module imports itself back through a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGES = ("search_space", "cells", "controllers", "evaluators", "experiments")
# What each package may import, beside itself (docs/design.md, "Packages and the direction of their imports").
ALLOWED = {
    "search_space": set(),
    "cells": {"search_space"},
    "evaluators": {"search_space", "cells"},
    "controllers": {"search_space"},
    "experiments": {"search_space", "cells", "evaluators", "controllers"},
}
NO_TORCH = ("search_space", "controllers")
# Import cycles that other branches of issue 15 break (evaluators/proxy.py <-> evaluators/pretrained.py, and
# experiments/config.py -> differentiable.py -> driver.py -> config.py), by the modules they run through. The
# integrator removes them from this list after merging those branches; the test then checks the cycles are gone.


def module_files() -> dict[str, Path]:
    """Every module of the installed namespace, by its attnas.* name."""
    found = {}
    for root, name in [("attnas", "attnas"), *((p, f"attnas.{p}") for p in PACKAGES)]:
        for path in sorted((REPOSITORY / root).rglob("*.py")):
            parts = list(path.relative_to(REPOSITORY / root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([name, *parts])] = path
    return found


def imports_of(path: Path, module: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """(imported name, line, whether it is a name taken from a module by `from m import name`) for every import
    statement in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno, False))
            found += [(f"{name}.{alias.name}", node.lineno, True) for alias in node.names]  # may be a submodule
    return found


def import_graph() -> tuple[nx.DiGraph, list[tuple[str, str, int, bool]]]:
    """The graph of imports between attnas modules, and every (module, imported name, line, from-name) read."""
    files = module_files()
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    raw = []
    for module, path in files.items():
        for name, line, extra in imports_of(path, module, path.name == "__init__.py"):
            raw.append((module, name, line, extra))
            if name in files and name != module:
                graph.add_edge(module, name, line=line)
    return graph, raw


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "attnas" and parts[1] in PACKAGES else None


def layering_problems(module: str, name: str) -> list[str]:
    """What is wrong with `module` importing `name` (nothing: an empty list)."""
    source, target = package_of(module), package_of(name)
    problems = []
    if name.split(".")[0] in PACKAGES:
        problems.append(f"a bare top-level name; use attnas.{name}")
    if source is None:
        return problems
    if target is not None and target != source and target not in ALLOWED[source]:
        problems.append(f"{source} may import only {sorted(ALLOWED[source]) or 'nothing of attnas'}")
    if name in ("attnas", "attnas.api", "attnas.errors"):
        problems.append("the parts never import the public API package above them")
    if source in NO_TORCH and name.split(".")[0] == "torch":
        problems.append(f"no torch in {source}")
    if module.startswith("attnas.experiments.dashboard") and target == "evaluators":
        problems.append("the dashboard is a view; it never trains or scores a model")
    return problems


def test_imports_follow_the_layering():
    _, raw = import_graph()
    problems = {f"{module} (line {line}) imports {name.rsplit('.', 1)[0] if extra else name}: {problem}"
                for module, name, line, extra in raw for problem in layering_problems(module, name)}
    assert not problems, "\n".join(sorted(problems))


def test_tests_and_benchmarks_use_the_attnas_names():
    bare = [f"{path.relative_to(REPOSITORY)}:{line} imports {name}"
            for folder in ("tests", "benchmarks") for path in sorted((REPOSITORY / folder).rglob("*.py"))
            for name, line, _ in imports_of(path, "tests.probe", False) if name.split(".")[0] in PACKAGES]
    assert not bare, "\n".join(bare)


def test_the_rules_catch_each_kind_of_edge():
    assert layering_problems("attnas.search_space.spec", "torch.nn")
    assert layering_problems("attnas.controllers.base", "attnas.cells.cell")
    assert layering_problems("attnas.cells.cell", "attnas.experiments.config")
    assert layering_problems("attnas.experiments.dashboard.server", "attnas.evaluators.proxy")
    assert layering_problems("attnas.experiments.cli", "attnas.api")
    assert layering_problems("attnas.api", "cells")
    assert not layering_problems("attnas.experiments.driver", "attnas.controllers")
    assert not layering_problems("attnas.api", "attnas.experiments.driver")


def import_cycles() -> list[set[str]]:
    """The groups of modules that import each other round in a circle (strongly connected components)."""
    graph, _ = import_graph()
    # A module importing its own package (whose __init__ imports it back) is how packages re-export; only cycles
    # between modules that are not each other's package count.
    graph.remove_edges_from([(module, name) for module, name in graph.edges if module.startswith(name + ".")])
    return [set(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]


def test_no_import_cycles():
    cycles = import_cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def test_the_guard_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    import torch\n    from . import sibling\n")
    assert imports_of(source, "attnas.controllers.probe", False) == [
        ("torch", 2, False), ("attnas.controllers", 3, False), ("attnas.controllers.sibling", 3, True)]
