"""The experiment file's parser, under its older name: the one parser lives in `attnas.search_space.schema` (below
the evaluators, which read their own sections with it)."""
from attnas.search_space.schema import (ConfigError, convert, expectation, non_negative, parse, positive,
                                        unknown_key)

__all__ = ["ConfigError", "convert", "expectation", "non_negative", "parse", "positive", "unknown_key"]
