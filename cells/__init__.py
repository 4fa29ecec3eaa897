"""Cells as PyTorch modules: one module per operation, `build(spec, channels)`, backbones, insertion, FLOPs and
parameter accounting, and export of a cell as standalone source."""
from cells.cell import build
from cells.errors import CellBuildError, CellInputError
from cells.ops import OPS, create_op
