"""A cell drawn as a self-contained SVG: one box per node (op, dim, key attributes), one arrow per connection with
the ports it feeds written on it. Layered by topological depth, top to bottom; no graphviz binaries needed."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Mapping

from attnas.search_space import INPUT, CellSpec

OUTPUT_VERTEX = "output"
# One colour per op, so the same op reads the same in every drawing.
OP_COLOURS = {
    "dot_attention": "#dbe9f6",
    "map_attention": "#e2f2dc",
    "gather": "#fbe3cd",
    "distribute": "#fdf1c7",
    "combine": "#eadff2",
    INPUT: "#eeeeee",
    OUTPUT_VERTEX: "#eeeeee",
}
FONT = 12
CHAR_WIDTH = 7.0  # a generous average glyph width at FONT px, so labels never overflow their box
LINE_HEIGHT = 16
LAYER_GAP = 64
NODE_GAP = 28
MARGIN = 16


@dataclass(frozen=True)
class Box:
    """A drawn vertex: its name, text lines, colour and geometry (centre x, top y, width, height)."""

    name: str
    lines: tuple[str, ...]
    colour: str
    x: float
    y: float
    width: float
    height: float


def node_lines(op: str, attrs: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """The text of a node's box: its op (and name), its dim, then its other attributes."""
    lines = [f"{op}  [{name}]"]
    if "dim" in attrs:
        lines.append(f"dim: {attrs['dim']}")
    others = [f"{key}={value}" for key, value in attrs.items() if key != "dim"]
    # Two attributes per line keeps boxes narrow enough for a readable layered drawing.
    lines.extend(", ".join(others[i:i + 2]) for i in range(0, len(others), 2))
    return tuple(lines)


def cell_svg(cell: CellSpec | Mapping[str, Any] | None, *, title: str | None = None) -> str:
    """The drawing of `cell` (a spec, its dict form, or None for the backbone alone) as SVG text."""
    if cell is not None and not isinstance(cell, CellSpec):
        cell = CellSpec.from_dict(dict(cell))
    vertices, edges = _graph(cell)
    depth = _depths(vertices, edges)
    boxes = _layout(vertices, edges, depth)
    detours = _detours(boxes, edges, depth)
    width = max([b.x + b.width / 2 for b in boxes.values()]
                + [x + len(", ".join(edges[e])) * CHAR_WIDTH / 2 + 4 for e, x in detours.items()]) + MARGIN
    height = max(b.y + b.height for b in boxes.values()) + MARGIN
    heading = title if title is not None else (
        "backbone alone (no cell)" if cell is None else f"cell {cell.hash}  width {cell.width:g}")
    width = max(width, len(heading) * CHAR_WIDTH * 1.15 + 2 * MARGIN)  # the heading is bold
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="attnas-cell" width="{width:.0f}" '
        f'height="{height + LINE_HEIGHT:.0f}" viewBox="0 {-LINE_HEIGHT} {width:.0f} {height + LINE_HEIGHT:.0f}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="{FONT}">',
        f"<title>{escape(heading)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<rect x="0" y="{-LINE_HEIGHT}" width="{width:.0f}" height="{height + LINE_HEIGHT:.0f}" fill="white"/>',
        f'<text class="heading" x="{MARGIN}" y="{-LINE_HEIGHT + FONT + 2}" font-weight="bold">'
        f"{escape(heading)}</text>",
    ]
    for (source, target), ports in edges.items():
        parts.append(_edge(boxes[source], boxes[target], ports, detours.get((source, target))))
    for box in boxes.values():
        parts.append(_box(box))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _graph(cell: CellSpec | None) -> tuple[dict[str, tuple[str, ...]], dict[tuple[str, str], list[str]]]:
    """Vertices (name -> text lines) and edges ((source, target) -> the ports fed, in the op's port order)."""
    vertices: dict[str, tuple[str, ...]] = {INPUT: ("input X",)}
    edges: dict[tuple[str, str], list[str]] = {}
    if cell is None:
        vertices[OUTPUT_VERTEX] = ("output = X (identity)",)
        edges[(INPUT, OUTPUT_VERTEX)] = []
        return vertices, edges
    for node in cell.nodes:
        vertices[node.name] = node_lines(node.op, node.attr_map, node.name)
        for port, source in node.inputs:
            edges.setdefault((source, node.name), []).append(port)
    summed = "sum of outputs, " if len(cell.output) > 1 else ""
    vertices[OUTPUT_VERTEX] = ("output", f"{summed}1x1x1 conv, BN, + X")
    for name in cell.output:
        edges[(name, OUTPUT_VERTEX)] = []
    return vertices, edges


def _depths(vertices: Mapping[str, Any], edges: Mapping[tuple[str, str], Any]) -> dict[str, int]:
    # Vertices arrive in topological order (a spec's nodes are), so one pass settles every depth.
    depth = {name: 0 for name in vertices}
    for name in vertices:
        sources = [s for (s, t) in edges if t == name]
        if sources:
            depth[name] = 1 + max(depth[s] for s in sources)
    return depth


def _layout(vertices: Mapping[str, tuple[str, ...]], edges: Mapping[tuple[str, str], Any],
            depth: Mapping[str, int]) -> dict[str, Box]:
    layers: dict[int, list[str]] = {}
    for name in vertices:
        layers.setdefault(depth[name], []).append(name)
    sizes = {name: (max(len(line) for line in lines) * CHAR_WIDTH + 20, len(lines) * LINE_HEIGHT + 10)
             for name, lines in vertices.items()}
    layer_width = {d: sum(sizes[n][0] for n in names) + NODE_GAP * (len(names) - 1) for d, names in layers.items()}
    total_width = max(layer_width.values()) + 2 * MARGIN
    centres: dict[str, float] = {}
    boxes: dict[str, Box] = {}
    y = MARGIN
    for d in sorted(layers):
        names = layers[d]
        # Order each layer by where its sources sit (barycentre), which keeps arrows from crossing in small cells.
        names.sort(key=lambda n: _barycentre(n, edges, centres))
        x = (total_width - layer_width[d]) / 2
        row_height = max(sizes[n][1] for n in names)
        for name in names:
            w, h = sizes[name]
            centres[name] = x + w / 2
            colour = OP_COLOURS.get(vertices[name][0].split()[0], OP_COLOURS.get(name, "#f4f4f4"))
            boxes[name] = Box(name=name, lines=vertices[name], colour=colour, x=x + w / 2, y=y, width=w, height=h)
            x += w + NODE_GAP
        y += row_height + LAYER_GAP
    return boxes


def _detours(boxes: Mapping[str, Box], edges: Mapping[tuple[str, str], Any],
             depth: Mapping[str, int]) -> dict[tuple[str, str], float]:
    """The x at which each edge that skips layers runs down, right of every box it would otherwise cross."""
    detours: dict[tuple[str, str], float] = {}
    for source, target in edges:
        skipped = [b for b in boxes.values() if depth[source] < depth[b.name] < depth[target]]
        if skipped:
            right = max(b.x + b.width / 2 for b in skipped)
            # Each further detour runs a little further right, so parallel detours stay apart.
            detours[(source, target)] = right + NODE_GAP + 18 * len(detours)
    return detours


def _barycentre(name: str, edges: Mapping[tuple[str, str], Any], centres: Mapping[str, float]) -> float:
    placed = [centres[s] for (s, t) in edges if t == name and s in centres]
    return sum(placed) / len(placed) if placed else 0.0


def _box(box: Box) -> str:
    left = box.x - box.width / 2
    bold = ' font-weight="bold"'
    text = "".join(
        f'<text x="{box.x:.1f}" y="{box.y + 5 + FONT + i * LINE_HEIGHT:.1f}" text-anchor="middle"'
        f'{bold if i == 0 else ""}>{escape(line)}</text>'
        for i, line in enumerate(box.lines))
    return (f'<g class="node" data-name="{escape(box.name)}"><rect x="{left:.1f}" y="{box.y:.1f}" '
            f'width="{box.width:.1f}" height="{box.height:.1f}" rx="6" fill="{box.colour}" stroke="#444"/>'
            f"{text}</g>")


def _edge(source: Box, target: Box, ports: list[str], detour: float | None = None) -> str:
    x1, y1 = source.x, source.y + source.height
    x2, y2 = target.x, target.y
    if detour is None:
        bend = (y2 - y1) / 2
        path = f"M {x1:.1f} {y1:.1f} C {x1:.1f} {y1 + bend:.1f}, {x2:.1f} {y2 - bend:.1f}, {x2:.1f} {y2:.1f}"
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2  # a symmetric cubic passes through the mean of its ends there
    else:
        # Out to the side, down past the layers in between, back in: never through another node's box.
        q = LAYER_GAP / 2
        path = (f"M {x1:.1f} {y1:.1f} C {x1:.1f} {y1 + q:.1f}, {detour:.1f} {y1:.1f}, {detour:.1f} {y1 + q:.1f} "
                f"L {detour:.1f} {y2 - q:.1f} C {detour:.1f} {y2:.1f}, {x2:.1f} {y2 - q:.1f}, {x2:.1f} {y2:.1f}")
        mx, my = detour, (y1 + y2) / 2
    parts = [f'<g class="edge" data-source="{escape(source.name)}" data-target="{escape(target.name)}">',
             f'<path d="{path}" fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#arrow)"/>']
    if ports:
        label = ", ".join(ports)
        w = len(label) * CHAR_WIDTH + 8
        parts.append(f'<rect x="{mx - w / 2:.1f}" y="{my - 9:.1f}" width="{w:.1f}" height="16" rx="3" '
                     f'fill="white" stroke="#bbb"/>')
        parts.append(f'<text class="port" x="{mx:.1f}" y="{my + 3:.1f}" text-anchor="middle" font-style="italic" '
                     f'fill="#333">{escape(label)}</text>')
    parts.append("</g>")
    return "".join(parts)
