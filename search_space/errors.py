"""Errors a user can cause. The CLI turns any `AttnasError` into one line and exit code 2."""
from __future__ import annotations

from typing import Any

QUOTE_LIMIT = 60


class AttnasError(ValueError):
    """A problem with something the user handed in (a file, a field, a flag), stated in one line."""


class SpecError(AttnasError):
    """A cell spec or search space that is not valid: the message names the node, port or attribute."""


def quoted(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)` for an error message, cut to about `limit` characters: a 5,000-character value a user handed
    in must not fill the terminal."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
