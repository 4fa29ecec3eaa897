"""The operation vocabulary as modules, and its registry: `OPS` maps each op name of the spec to its module class;
`create_op(name, in_channels, channels, **attributes)` builds one, raising on an unknown name."""
from __future__ import annotations

import inspect
from typing import Any

from attnas.cells.errors import CellBuildError
from attnas.cells.ops.base import Operation
from attnas.cells.ops.combine import Combine
from attnas.cells.ops.dot_attention import DotAttention
from attnas.cells.ops.double_attention import Distribute, Gather
from attnas.cells.ops.grouping import from_groups, to_groups
from attnas.cells.ops.map_attention import MapAttention

OPS: dict[str, type[Operation]] = {
    "dot_attention": DotAttention,
    "map_attention": MapAttention,
    "gather": Gather,
    "distribute": Distribute,
    "combine": Combine,
}

__all__ = ["OPS", "create_op", "Operation", "DotAttention", "MapAttention", "Gather", "Distribute", "Combine",
           "to_groups", "from_groups"]


def create_op(name_or_class: str | type[Operation], *args: Any, **kwargs: Any) -> Operation:
    """Build an op module from its registered name (or its class), passing the shared argument vocabulary on."""
    if isinstance(name_or_class, type) and issubclass(name_or_class, Operation):
        op_class = name_or_class
    elif isinstance(name_or_class, str) and name_or_class in OPS:
        op_class = OPS[name_or_class]
    else:
        raise CellBuildError(f"unknown op {name_or_class!r}; known ops: {', '.join(OPS)}")
    accepted = list(inspect.signature(op_class.__init__).parameters)[1:]
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        raise CellBuildError(f"op {op_class.__name__} has no argument {unknown[0]!r}; its arguments are: "
                             f"{', '.join(accepted)}")
    return op_class(*args, **kwargs)
