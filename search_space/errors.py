"""Errors a user can cause. The CLI turns any `AttnasError` into one line and exit code 2."""


class AttnasError(ValueError):
    """A problem with something the user handed in (a file, a field, a flag), stated in one line."""


class SpecError(AttnasError):
    """A cell spec or search space that is not valid: the message names the node, port or attribute."""
