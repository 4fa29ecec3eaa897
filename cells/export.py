"""Taking a cell away from attnas: `export` writes it as a standalone Python file (one nn.Module class, importing
only torch), `export_program` as a torch.export program (.pt2) for deployment.

The standalone file is generated from the package-built cell: its layers are rebuilt with nn.ModuleDict so the
state_dict keys are the same (`ops.<node key>.<layer>...`, `project.weight`, `norm.*`, see cells.cell), and each
op's computation is the package's own pure function (`Operation.compute`), copied verbatim with inspect.getsource
together with cells.ops.grouping. So the exported cell runs the same code, and weights trained with attnas load
with strict=True.
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
from attnas.cells.ops import grouping
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


def export(spec: CellSpec, path: str | Path, *, channels: int, class_name: str = "AttentionCell") -> Path:
    """Write `spec`, built for `channels` channels, as a standalone Python file holding the class `class_name`."""
    if not class_name.isidentifier():
        raise CellBuildError(f"export: class_name: expected a Python identifier, got {class_name!r}")
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
def render(cell: Cell, *, class_name: str) -> str:
    """The standalone source of a built cell."""
    spec = cell.spec
    title = f"{spec.name or 'attention'} cell {spec.hash}, exported by attnas for {cell.channels} channels."
    header = FILE_HEADER.format(title=_docstring_safe(title), channels=cell.channels,
                                hash=_docstring_safe(spec.hash), hash_literal=repr(spec.hash),
                                yaml=_docstring_safe(textwrap.indent(spec.to_yaml(), "    ")))
    functions = [grouping.to_groups, grouping.from_groups]
    for op in cell.ops.values():
        for function in (*type(op).helpers, type(op).compute):
            if function not in functions:
                functions.append(function)
    sources = [textwrap.dedent(inspect.getsource(function)) for function in functions]
    blocks = [header.rstrip("\n"), *(source.rstrip("\n") for source in sources), _class_source(cell, class_name)]
    return "\n\n\n".join(blocks) + "\n"


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
        lines.append(f"        self.ops[{key!r}] = nn.ModuleDict({{")
        lines += [f"            {child!r}: {_module_code(module)}," for child, module in op.named_children()]
        lines.append("        })")
    lines += [
        f"        self.project = {_module_code(cell.project)}",
        f"        self.norm = {_module_code(cell.norm)}",
        "        nn.init.zeros_(self.norm.weight)  # identity at initialisation",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        if x.dim() != 5:",
        '            raise ValueError(f"cell input: expected a 5-D (N, C, T, H, W) tensor, got shape '
        '{tuple(x.shape)}")',
        "        if x.shape[1] != self.channels:",
        '            raise ValueError(f"cell input: expected {self.channels} channels, got {x.shape[1]} '
        '(shape {tuple(x.shape)})")',
    ]
    variable = {INPUT: "x", **{name: f"node_{name}" for name in cell.nodes}}
    for name, (stored, op) in zip(cell.nodes, cell.ops.items()):
        arguments = [f"self.ops[{stored!r}]", *(variable[source] for source in cell.sources[name])]
        arguments += [f"{key}={value!r}" for key, value in op.options.items()]
        lines.append(f"        {variable[name]} = {type(op).compute.__name__}({', '.join(arguments)})")
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
