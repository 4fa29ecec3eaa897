"""Errors a user can cause when building or running a cell: one line naming what was expected and what was got."""
from attnas.search_space.errors import AttnasError


class CellBuildError(AttnasError):
    """A cell or op that cannot be built as asked (channels, heads, descriptors, an unknown op name)."""


class CellInputError(AttnasError):
    """A tensor handed to a cell that is not the (N, C, T, H, W) map it was built for."""
