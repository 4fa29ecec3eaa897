"""Taking a cell away from attnas: `export` writes it as a standalone Python file (the cell's nn.Module class and a
small class per op, importing only torch; it also compiles with torch.jit.script), `export_program` as a
torch.export program (.pt2) for deployment.

The standalone file is generated from the package-built cell: each op is a small class whose `forward` is the
package op's own `forward`, copied verbatim with inspect.getsource together with cells.ops.grouping (see
cells.ops.base for the rules that code keeps), and whose layers are rebuilt under the same names, so the state_dict
keys are the same (`ops.<node key>.<layer>...`, `project.weight`, `norm.*`, see cells.cell). So the exported cell
runs the same code, weights trained with attnas load with strict=True, and the module compiles with
torch.jit.script.
"""
from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from attnas.cells.cell import Cell, build
from attnas.cells.errors import CellBuildError
from attnas.cells.ops import OPS, grouping
from attnas.search_space import INPUT, CellSpec

FILE_HEADER = '''"""{title}

Standalone: needs only torch. Weights trained with attnas load with `load_state_dict(state_dict, strict=True)`.
Input: a (N, {channels}, T, H, W) map; output: the same shape (the cell adds its attention to its input).

Cell hash: {hash}
Spec:

{yaml}"""
import torch
import torch.nn.functional as F
from torch import nn

SPEC_HASH = {hash_literal}
CHANNELS = {channels}
'''

OP_BASE = '''class Op(nn.Module):
    """An op of the cell: its layers (registered under their names) and its options (attributes its forward reads)."""

    def __init__(self, layers: dict, **options) -> None:
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)
        for name, value in options.items():
            setattr(self, name, value)'''


def export(spec: CellSpec, path: str | Path, *, channels: int, class_name: str = "AttentionCell") -> Path:
    """Write `spec`, built for `channels` channels, as a standalone Python file holding the class `class_name`."""
    if not class_name.isidentifier() or class_name in _GENERATED_NAMES:
        raise CellBuildError(f"export: class_name: expected a Python identifier other than "
                             f"{', '.join(sorted(_GENERATED_NAMES))}, got {class_name!r}")
    cell = build(spec, channels)
    path = Path(path)
    path.write_text(render(cell, class_name=class_name))
    return path


def export_program(spec: CellSpec, path: str | Path, *, channels: int, example_shape: Sequence[int],
                   weights: Mapping[str, torch.Tensor] | None = None, dynamic: bool = True) -> Path:
    """Write `spec` built for `channels` (with `weights`, a state_dict, if given) as a torch.export program in eval
    mode, traced on a zero tensor of `example_shape`. With `dynamic`, batch, T, H and W may vary at run time within
    torch.export's range (sizes >= 2; a size of 1 in `example_shape` stays fixed at 1)."""
    example_shape = tuple(example_shape)
    if len(example_shape) != 5 or example_shape[1] != channels:
        raise CellBuildError(f"export_program: example_shape: expected (N, {channels}, T, H, W), got {example_shape}")
    cell = build(spec, channels)
    if weights is not None:
        cell.load_state_dict(weights, strict=True)
    cell.eval()
    example = torch.zeros(example_shape)
    dynamic_shapes = None
    if dynamic:
        auto = torch.export.Dim.AUTO
        dynamic_shapes = ({0: auto, 2: auto, 3: auto, 4: auto},)
    program = torch.export.export(cell, (example,), dynamic_shapes=dynamic_shapes)
    path = Path(path)
    torch.export.save(program, str(path))
    return path


# -------------------------------------------------------------------------------------------------- code generation
_GENERATED_NAMES = frozenset({"Op", "torch", "F", "nn", "SPEC_HASH", "CHANNELS", grouping.to_groups.__name__,
                              grouping.from_groups.__name__, *(op.__name__ for op in OPS.values()),
                              *(helper.__name__ for op in OPS.values() for helper in op.helpers)})
"""Names the standalone file defines or imports besides the cell's class."""


def render(cell: Cell, *, class_name: str) -> str:
    """The standalone source of a built cell."""
    spec = cell.spec
    title = f"{spec.name or 'attention'} cell {spec.hash}, exported by attnas for {cell.channels} channels."
    header = FILE_HEADER.format(title=_docstring_safe(title), channels=cell.channels,
                                hash=_docstring_safe(spec.hash), hash_literal=repr(spec.hash),
                                yaml=_docstring_safe(textwrap.indent(spec.to_yaml(), "    ")))
    functions = [grouping.to_groups, grouping.from_groups]
    op_classes = []
    for op in cell.ops.values():
        functions += [function for function in type(op).helpers if function not in functions]
        if type(op) not in op_classes:
            op_classes.append(type(op))
    sources = [textwrap.dedent(inspect.getsource(function)).rstrip("\n") for function in functions]
    blocks = [header.rstrip("\n"), *sources, OP_BASE, *map(_op_class_source, op_classes),
              _class_source(cell, class_name)]
    return "\n\n\n".join(blocks) + "\n"


def _op_class_source(op_class: type) -> str:
    """The standalone class of an op: the package op's forward, verbatim, on the generated base class Op."""
    summary = inspect.getdoc(op_class).split("\n\n")[0].replace("\n", "\n    ")
    forward = textwrap.dedent(inspect.getsource(op_class.forward))
    return (f'class {op_class.__name__}(Op):\n    """{_docstring_safe(summary)}"""\n\n'
            + textwrap.indent(forward, "    ").rstrip("\n"))


def _class_source(cell: Cell, class_name: str) -> str:
    lines = [
        f"class {class_name}(nn.Module):",
        f'    """The attention cell {_docstring_safe(cell.spec.hash)} on maps of {cell.channels} channels '
        f'(inner width {cell.inner_channels})."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        f"        self.channels = {cell.channels}",
        "        self.ops = nn.ModuleDict()",
    ]
    for key, op in cell.ops.items():
        lines.append(f"        self.ops[{key!r}] = {type(op).__name__}({{")
        lines += [f"            {child!r}: {_module_code(module)}," for child, module in op.named_children()]
        options = "".join(f", {name}={value!r}" for name, value in op.options.items())
        lines.append(f"        }}{options})")
    lines += [
        f"        self.project = {_module_code(cell.project)}",
        f"        self.norm = {_module_code(cell.norm)}",
        "        nn.init.zeros_(self.norm.weight)  # identity at initialisation",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        if x.dim() != 5:",
        '            raise ValueError(f"cell input: expected a 5-D (N, C, T, H, W) tensor, got shape '
        '{list(x.shape)}")',
        "        if x.shape[1] != self.channels:",
        '            raise ValueError(f"cell input: expected {self.channels} channels, got {x.shape[1]} '
        '(shape {list(x.shape)})")',
    ]
    variable = {INPUT: "x", **{name: f"node_{name}" for name in cell.nodes}}
    for name, stored in zip(cell.nodes, cell.ops):
        arguments = ", ".join(variable[source] for source in cell.sources[name])
        lines.append(f"        {variable[name]} = self.ops[{stored!r}]({arguments})")
    total = " + ".join(variable[name] for name in cell.output)
    lines.append(f"        return x + self.norm(self.project({total}))")
    return "\n".join(lines)


def _module_code(module: nn.Module) -> str:
    """Constructor source for the standard layers op modules are made of."""
    if isinstance(module, nn.Conv3d):
        if module.stride != (1, 1, 1) or module.dilation != (1, 1, 1) or module.groups != 1:
            raise CellBuildError(f"export: unsupported Conv3d configuration {module!r}")
        return (f"nn.Conv3d({module.in_channels}, {module.out_channels}, kernel_size={module.kernel_size}, "
                f"padding={module.padding}, bias={module.bias is not None})")
    if isinstance(module, nn.Linear):
        return f"nn.Linear({module.in_features}, {module.out_features}, bias={module.bias is not None})"
    if isinstance(module, nn.BatchNorm3d):
        return f"nn.BatchNorm3d({module.num_features}, eps={module.eps!r}, momentum={module.momentum!r})"
    if isinstance(module, nn.Sequential):
        return "nn.Sequential(" + ", ".join(_module_code(child) for child in module) + ")"
    if type(module) in (nn.ReLU, nn.Identity):
        return f"nn.{type(module).__name__}()"
    raise CellBuildError(f"export: no code generator for layer {type(module).__name__}")


def _docstring_safe(text: str) -> str:
    """`text` as the body of a triple-quoted string literal: backslashes and quotes escaped (so no quote in the
    text can end the literal), and characters that are not printable (newlines aside) written as escapes."""
    return "".join(_DOCSTRING_ESCAPES.get(char) or (char if char.isprintable() or char == "\n"
                                                    else repr(char)[1:-1]) for char in text)


_DOCSTRING_ESCAPES = {"\\": "\\\\", '"': '\\"'}
