"""The cell drawing: one SVG element per node and per connection, labels with op, dim and attributes, ports on the
edges, boxes that never overlap."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from attnas.experiments.dashboard.drawing import cell_svg
from attnas.search_space import INPUT, load_space, load_zoo, zoo_names

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str):
    root = ET.fromstring(svg)
    nodes = {g.get("data-name"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    edges = {(g.get("data-source"), g.get("data-target")): g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"}
    return root, nodes, edges


def texts(element) -> list[str]:
    return [t.text for t in element.iter(f"{SVG}text")]


def expected_edges(spec) -> dict[tuple[str, str], str]:
    edges: dict[tuple[str, str], list[str]] = {}
    for node in spec.nodes:
        for port, source in node.inputs:
            edges.setdefault((source, node.name), []).append(port)
    for name in spec.output:
        edges[(name, "output")] = []
    return {key: ", ".join(ports) for key, ports in edges.items()}


def check_drawing(spec) -> None:
    root, nodes, edges = parse(cell_svg(spec))
    assert set(nodes) == {INPUT, "output", *(n.name for n in spec.nodes)}
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]) == len(spec.nodes) + 2
    wanted = expected_edges(spec)
    assert set(edges) == set(wanted)
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]) == len(wanted)
    for key, ports in wanted.items():
        port_texts = [t.text for t in edges[key].iter(f"{SVG}text") if t.get("class") == "port"]
        assert port_texts == ([ports] if ports else [])
        assert len(list(edges[key].iter(f"{SVG}path"))) == 1
    for node in spec.nodes:
        lines = texts(nodes[node.name])
        assert lines[0] == f"{node.op}  [{node.name}]"
        attrs = node.attr_map
        if "dim" in attrs:
            assert f"dim: {attrs['dim']}" in lines
        body = " ".join(lines)
        for key, value in attrs.items():
            if key != "dim":
                assert f"{key}={value}" in body
    boxes = [tuple(float(g.find(f"{SVG}rect").get(k)) for k in ("x", "y", "width", "height")) for g in nodes.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
            assert apart, f"node boxes overlap: {a} {b}"
    width = float(root.get("width"))
    assert all(x + w <= width for x, _, w, _ in boxes)


@pytest.mark.parametrize("name", zoo_names())
def test_zoo_cells_are_drawn_node_by_node_and_edge_by_edge(name):
    check_drawing(load_zoo(name))


def test_non_local_and_double_attention_labels():
    _, nodes, edges = parse(cell_svg(load_zoo("non_local")))
    assert texts(nodes["attend"]) == ["dot_attention  [attend]", "dim: spatiotemporal", "similarity=softmax, heads=1"]
    assert [t for t in texts(edges[(INPUT, "attend")])] == ["query, key"]
    _, nodes, edges = parse(cell_svg(load_zoo("double_attention")))
    assert texts(edges[("gather", "distribute")]) == ["bag"]
    assert texts(edges[(INPUT, "distribute")]) == ["x"]
    assert texts(nodes["gather"]) == ["gather  [gather]", "dim: spatiotemporal", "descriptors=1.0"]


def test_an_edge_that_skips_a_layer_runs_beside_the_boxes_in_between():
    root, nodes, edges = parse(cell_svg(load_zoo("double_attention")))
    gather = nodes["gather"].find(f"{SVG}rect")
    right = float(gather.get("x")) + float(gather.get("width"))
    path = edges[(INPUT, "distribute")].find(f"{SVG}path").get("d")
    xs = [float(v) for v in path.replace(",", " ").split() if v.replace(".", "").replace("-", "").isdigit()][::2]
    assert max(xs) > right


def test_sampled_cells_are_drawn_completely():
    space = load_space("default")
    rng = np.random.default_rng(0)
    for _ in range(25):
        check_drawing(space.sample(rng))


def test_the_backbone_alone_and_the_dict_form():
    _, nodes, edges = parse(cell_svg(None))
    assert set(nodes) == {INPUT, "output"} and list(edges) == [(INPUT, "output")]
    spec = load_zoo("cbam")
    assert cell_svg(spec.to_dict()) == cell_svg(spec)
    assert "<title>cell " + spec.hash in cell_svg(spec)
