"""Reading plain YAML data into typed config dataclasses, with one-line errors naming the file and dotted field: the
one config parser every section of an experiment file goes through (experiment, evaluator, data, frame sampling,
differentiable search), and the one did-you-mean for unknown keys (`unknown_key`), also used by the sections that
are not dataclasses (objective, controller settings, synthetic tasks).

`parse(cls, data, where="file.yaml", path="evaluator")` checks every key against the dataclass's fields (unknown
keys are errors, with a did-you-mean), converts and checks each value against its annotation (bool, int, float,
str, Literal, Optional, list[...], dict[str, ...], nested dataclasses) and fills in defaults. A field may narrow its
values further with `field(metadata={"check": fn})`, where fn returns a problem string or None.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal, Mapping, Union

from attnas.search_space.errors import AttnasError, quoted
from attnas.search_space.yaml_io import describe_value


class ConfigError(AttnasError):
    """An experiment file (or section of one) that does not fit its schema."""


def parse(cls: type, data: Any, *, where: str, path: str = "") -> Any:
    """An instance of the dataclass `cls` built from `data`; raises ConfigError naming `where` and the field."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: {path or 'the file'}: expected a mapping, got {describe_value(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{where}: {unknown_key(key, list(fields), _join(path, key))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        dotted = _join(path, name)
        if name not in data:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: {dotted}: missing; expected {expectation(hints[name])}")
            continue
        value = convert(hints[name], data[name], where=where, path=dotted)
        check = spec.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{where}: {dotted}: {problem}, got {quoted(data[name])}")
        values[name] = value
    return cls(**values)


def convert(annotation: Any, value: Any, *, where: str, path: str) -> Any:
    """`value` checked against (and converted to) the type `annotation`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return convert(option, value, where=where, path=path)
            except ConfigError:
                continue
        raise _mismatch(annotation, value, where, path)
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _mismatch(annotation, value, where, path)
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _mismatch(annotation, value, where, path)
        item = args[0] if args else Any
        converted = [convert(item, v, where=where, path=f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if (origin or annotation) is tuple else converted
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _mismatch(annotation, value, where, path)
        item = args[1] if len(args) == 2 else Any
        return {str(k): convert(item, v, where=where, path=_join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return parse(annotation, value, where=where, path=path)
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _mismatch(annotation, value, where, path)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _mismatch(annotation, value, where, path)
    if annotation is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot, or no exponent sign) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None or not math.isfinite(number):
            raise _mismatch(annotation, value, where, path)
        return number
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _mismatch(annotation, value, where, path)
    raise TypeError(f"schema: unsupported annotation {quoted(annotation)} at {path}")


def expectation(annotation: Any) -> str:
    """A readable description of what a type annotation accepts."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        parts = [expectation(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple) or annotation in (list, tuple):
        return f"a list of {expectation(args[0])}s" if args else "a list"
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(annotation):
        return "a mapping with fields " + ", ".join(f.name for f in dataclasses.fields(annotation))
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def unknown_key(key: Any, allowed: list[str] | tuple[str, ...], dotted: str) -> str:
    """The message for an unknown key at `dotted`: the nearest valid key (difflib) and every valid one."""
    hint = difflib.get_close_matches(str(key), list(allowed), n=1)
    return (f"{dotted}: unknown field" + (f" (did you mean {quoted(hint[0])}?)" if hint else "")
            + f"; expected one of: {', '.join(allowed)}")


def positive(value: Any) -> str | None:
    return None if value is None or value > 0 else "expected a positive number"


def non_negative(value: Any) -> str | None:
    return None if value is None or value >= 0 else "expected a number >= 0"


def _mismatch(annotation: Any, value: Any, where: str, path: str) -> ConfigError:
    return ConfigError(f"{where}: {path}: expected {expectation(annotation)}, got {describe_value(value)}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)
