"""`Operation`, the base of every op module, and the argument checks all ops share.

Argument vocabulary (every op): `in_channels` first (an int, or {port: int} when the op's map ports differ, e.g.
a dot_attention whose query is the cell input and whose key is another node), then `channels` (the inner width c
every op outputs), then keyword-only attributes named as in the spec (dim, similarity, heads, gate, pooling, kernel,
reduction, descriptors, mode). One difference: `descriptors` is the number n of descriptors here (gather and
distribute alike), where the spec gives gather a fraction of c; cells.cell.build converts it.

An op module holds only standard torch layers (so its state_dict keys are plain and a standalone file can rebuild
them) and its options as plain attributes (`self.dim`, ...; `option_names` lists them). Its `forward` uses nothing
else but torch, cells.ops.grouping and the op's `helpers`, in the Python that torch.jit.script compiles (annotated
tensors, no keyword-only arguments, no f-string conversions such as `!r`; a layer that only some instances have is
tested with `hasattr`, which TorchScript resolves when it compiles). cells.export copies `forward` verbatim into a
standalone file, so the exported cell runs exactly the package's code, in Python or under TorchScript.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from attnas.cells.errors import CellBuildError
from attnas.search_space.vocabulary import get_operation


class Operation(nn.Module):
    """An op of the vocabulary as a module.

    Subclasses set `ports` (input ports in the order forward takes them), `option_names` (the attributes forward
    reads, set in __init__) and `helpers` (other pure functions forward calls, besides cells.ops.grouping).
    """

    ports: tuple[str, ...] = ()
    option_names: tuple[str, ...] = ()
    helpers: tuple[Callable, ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        """The op's options by name, as its node's attributes give them."""
        return {name: getattr(self, name) for name in self.option_names}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


def port_channels(op: str, in_channels: int | Mapping[str, int], ports: tuple[str, ...]) -> dict[str, int]:
    """Channels of each input port: one int for all, or a mapping naming every port."""
    if isinstance(in_channels, Mapping):
        if set(in_channels) != set(ports):
            raise CellBuildError(f"{op}: in_channels must name the ports {', '.join(ports)}, got "
                                 f"{', '.join(map(str, in_channels)) or 'none'}")
        table = {port: in_channels[port] for port in ports}
    else:
        table = {port: in_channels for port in ports}
    for port, value in table.items():
        positive_int(op, f"in_channels[{port}]" if len(ports) > 1 else "in_channels", value)
    return table


def positive_int(op: str, field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CellBuildError(f"{op}: {field}: expected a positive integer, got {value!r}")
    return value


def choice(op: str, field: str, value: Any) -> str:
    """`value` if it is one of the choices search_space.vocabulary gives attribute `field` of `op`."""
    allowed = get_operation(op).attribute(field).values
    if value not in allowed:
        raise CellBuildError(f"{op}: {field}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def pointwise(in_channels: int, out_channels: int) -> nn.Conv3d:
    """The 1x1x1 convolution every op uses to project a map (with bias, as Wang et al.'s theta/phi/g)."""
    return nn.Conv3d(in_channels, out_channels, kernel_size=1)

