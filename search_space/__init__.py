"""The search space of attention cells: the vocabulary, the cell DAG (`CellSpec`), and YAML-defined spaces.

Pure Python with networkx and numpy; never imports torch.
"""
from pathlib import Path

from attnas.search_space.errors import AttnasError, SpecError
from attnas.search_space.interface import Space
from attnas.search_space.resources import space_names, space_path, zoo_names, zoo_path
from attnas.search_space.space import SearchSpace, SpaceSize
from attnas.search_space.spec import INPUT, CellSpec, Node, unique_cells
from attnas.search_space.vocabulary import BAG, MAP, OPERATIONS, get_operation

__all__ = [
    "AttnasError", "SpecError", "Space", "SearchSpace", "SpaceSize", "CellSpec", "Node", "INPUT", "MAP", "BAG",
    "OPERATIONS", "get_operation", "unique_cells", "zoo_path", "zoo_names", "space_path", "space_names", "load_zoo",
    "load_space",
]


def load_zoo(name: str) -> CellSpec:
    """A reference cell from cells/zoo/ by name."""
    return CellSpec.from_yaml(zoo_path(name))


def load_space(name_or_path: str) -> SearchSpace:
    """A shipped search space by name ('default', 'small'), or any search-space YAML file by path."""
    if name_or_path in space_names():
        return SearchSpace.from_yaml(str(space_path(name_or_path)))
    if not Path(name_or_path).is_file():
        raise SpecError(f"{name_or_path}: no such file or shipped space (shipped spaces: "
                        f"{', '.join(space_names())})")
    return SearchSpace.from_yaml(str(name_or_path))
