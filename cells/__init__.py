"""Cells as PyTorch modules: one module per operation, `build(spec, channels)`, backbones, insertion, FLOPs and
parameter accounting, and export of a cell as standalone source."""
from cells.cell import build
from cells.errors import CellBuildError, CellInputError
from cells.export import export, export_program
from cells.ops import OPS, create_op
from cells.backbones import BACKBONES, create_backbone
from cells.complexity import count_macs, count_params, forward_latency, measure_latency
from cells.insert import insert, inserted_cells
