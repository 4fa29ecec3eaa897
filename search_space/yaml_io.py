"""Reading and writing the YAML that specs, spaces and experiments are written in, safely and with clear errors."""
from __future__ import annotations

import os
import re
import stat
from typing import Any, Mapping

import yaml

from attnas.search_space.errors import SpecError

MAX_YAML_BYTES = 1 << 20
# Values a document may expand to through its aliases; a "billion laughs" file is a few lines that expand to 10^9.
MAX_YAML_VALUES = 100_000
_BASE_10_ONLY = {  # YAML 1.1 reads `1:30` as 90 (base 60); here it stays text, and the schema says what it expected
    "tag:yaml.org,2002:int": re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                                        r"|[-+]?0x[0-9a-fA-F_]+)$"),
    "tag:yaml.org,2002:float": re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
                                          r"|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                                          r"|\.(?:nan|NaN|NAN))$"),
}


class _StrictLoader(yaml.SafeLoader):
    """`yaml.safe_load`'s loader, minus base-60 numbers, refusing a key written twice in one mapping (YAML keeps the
    last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, _BASE_10_ONLY.get(tag, pattern)) for tag, pattern in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_yaml(path_or_text: str | os.PathLike, *, source: str | None = None) -> tuple[Any, str]:
    """Parse a YAML file (or YAML text) with `yaml.safe_load`; return the data and a name for error messages.

    Anything that is not plain, reasonably sized YAML becomes a one-line `SpecError` naming the file.
    """
    text, where = _read(path_or_text, source)
    if len(text) > MAX_YAML_BYTES:
        raise SpecError(f"{where}: {len(text)} bytes is too large for a YAML spec (at most {MAX_YAML_BYTES})")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{where}: not valid YAML: {error.problem or error.context}{position}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{where}: not valid YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise SpecError(f"{where}: YAML nested too deeply") from None
    if "*" in text and _expanded_size(data, MAX_YAML_VALUES) > MAX_YAML_VALUES:
        raise SpecError(f"{where}: its aliases expand to more than {MAX_YAML_VALUES:,} values; expected plain YAML")
    return data, where


def _expanded_size(data: Any, limit: int) -> int:
    """How many values `data` holds counting each alias's target again where it is used, stopping past `limit`
    (a recursive alias never ends)."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


def _read(path_or_text: str | os.PathLike, source: str | None) -> tuple[str, str]:
    is_path = isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and path_or_text.endswith((".yaml", ".yml", ".json"))
        and ("\n" not in path_or_text or os.path.lexists(path_or_text))  # a folder name may hold a newline
    )
    if not is_path:
        return str(path_or_text), source or "YAML text"
    path = os.fspath(path_or_text)
    return read_text_file(path, where=source or path, limit=MAX_YAML_BYTES, what="a YAML spec"), source or path


def read_text_file(path: str | os.PathLike, *, where: str, limit: int, what: str = "this file") -> str:
    """The UTF-8 text of the regular file at `path`, at most `limit` bytes, else a one-line `SpecError` naming
    `where`. Only regular files: a link to /dev/zero would read without end (its size says 0), a FIFO would block."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(f"{where}: is a folder, expected a file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{where}: not a regular file (a device, FIFO or socket); expected a file")
        if info.st_size > limit:
            raise SpecError(f"{where}: {info.st_size} bytes is too large for {what} (at most {limit})")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise SpecError(f"{where}: no such file") from None
    except OSError as error:
        raise SpecError(f"{where}: cannot be read ({error.strerror})") from None
    if len(data) > limit:  # grew since stat
        raise SpecError(f"{where}: too large for {what} (at most {limit} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{where}: not UTF-8 text") from None


def describe_value(value: Any) -> str:
    """A short description of a YAML value for error messages: 'nothing', 'a mapping', 'a list', "int 3"."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"{type(value).__name__} {value!r}"[:80]
