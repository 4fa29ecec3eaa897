"""Cells as PyTorch modules: one module per operation, `build(spec, channels)`, backbones, insertion, FLOPs and
parameter accounting, and export of a cell as standalone source."""
from attnas.cells.cell import build
from attnas.cells.errors import CellBuildError, CellInputError
from attnas.cells.export import export, export_program
from attnas.cells.ops import OPS, create_op
from attnas.cells.backbones import BACKBONES, create_backbone
from attnas.cells.complexity import count_macs, count_params, forward_latency, measure_latency
from attnas.cells.insert import insert, inserted_cells
