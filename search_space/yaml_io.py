"""Reading and writing the YAML that specs, spaces and experiments are written in, safely and with clear errors."""
from __future__ import annotations

import os
import stat
from typing import Any, Mapping

import yaml

from attnas.search_space.errors import SpecError

MAX_YAML_BYTES = 1 << 20


def load_yaml(path_or_text: str | os.PathLike, *, source: str | None = None) -> tuple[Any, str]:
    """Parse a YAML file (or YAML text) with `yaml.safe_load`; return the data and a name for error messages.

    Anything that is not plain, reasonably sized YAML becomes a one-line `SpecError` naming the file.
    """
    text, where = _read(path_or_text, source)
    if len(text) > MAX_YAML_BYTES:
        raise SpecError(f"{where}: {len(text)} bytes is too large for a YAML spec (at most {MAX_YAML_BYTES})")
    try:
        return yaml.safe_load(text), where
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{where}: not valid YAML: {error.problem or error.context}{position}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{where}: not valid YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise SpecError(f"{where}: YAML nested too deeply") from None


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
