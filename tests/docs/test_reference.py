"""docs/experiment-file.md is generated from the schema, so it cannot drift: the committed file equals what the
script writes, and every field of the schema (and nothing else) has a meaning."""
from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def generator():
    spec = importlib.util.spec_from_file_location("experiment_reference", DOCS / "experiment_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_reference_is_the_generated_one():
    reference = generator()
    assert (DOCS / "experiment-file.md").read_text() == reference.render(), (
        "docs/experiment-file.md is stale: run `.venv/bin/python docs/experiment_reference.py`")


def test_every_field_has_a_meaning_and_every_meaning_a_field():
    reference = generator()
    fields = reference.documented_fields()
    assert len(fields) == len(set(fields))
    assert set(fields) == set(reference.MEANINGS), (sorted(set(fields) - set(reference.MEANINGS)),
                                                   sorted(set(reference.MEANINGS) - set(fields)))
    # spot checks that the tables come from the schema, not from the script
    text = reference.render()
    assert "| `budget.trials` | a whole number or null | `20` |" in text
    assert "| `evaluator.epochs` | a whole number | `4` |" in text
    assert "| `population_size` | a whole number | `10` |" in text
