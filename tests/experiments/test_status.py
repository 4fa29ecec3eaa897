"""`attnas status` on a finished run folder: a table that fits 80 columns with the reference cells by name, and the
same rows as JSON and CSV."""
import csv
import io
import json

import pytest

from attnas.experiments.cli import main
from attnas.experiments.dashboard.data import REFERENCES_ATTR
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.history import COMPLETE


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = write_synthetic_history(tmp_path_factory.mktemp("runs"), name="status-run", trials=12)
    history = run.history()
    references = dict(history.metadata[REFERENCES_ATTR])
    # the search found the non-local cell itself: the history marks that trial with the reference's name
    found = history.best(3)[2]
    references["non_local"] = {**references["non_local"], "hash": found.hash}
    history.set_metadata(**{REFERENCES_ATTR: references})
    return run


def test_table_fits_80_columns_without_wrapping_and_names_the_references(run, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["status", str(run.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "hash"])
    rows = lines[header + 1:]
    best = run.history().best(10)
    ranked = [row for row in rows if row.split()[0].isdigit()]
    assert [int(row.split()[0]) for row in ranked] == [r.number for r in best]  # one line per cell, best first
    assert [row.split()[2] for row in ranked] == [f"{r.value:.4f}" for r in best]
    references = [row for row in rows if row.split()[0] == "ref"]
    assert [row.split(maxsplit=7)[-1].rstrip() for row in references] == \
        ["A^2 (double attention)", "non-local", "backbone alone"]
    third = best[2]
    marked = next(row for row in ranked if int(row.split()[0]) == third.number)
    assert "= non-local: " in marked
    long_cells = [row for row in ranked if row.rstrip().endswith("…")]
    assert long_cells, "a long op list is cut short with an ellipsis rather than wrapped"


def test_json_and_csv_give_the_same_rows(run, capsys):
    assert main(["status", str(run.path), "--json", "--top", "5"]) == 0
    status = json.loads(capsys.readouterr().out)
    history = run.history()
    assert status["run"] == "status-run" and status["top"] == 5
    assert status["counts"]["complete"] == len(history.trials([COMPLETE]))
    trials = [row for row in status["rows"] if row["trial"] is not None]
    assert [(row["trial"], row["hash"], row["accuracy"]) for row in trials] == \
        [(r.number, r.hash, r.value) for r in history.best(5)]
    assert {row["reference"] for row in status["rows"] if row["trial"] is None} == \
        {"none", "non_local", "double_attention"}
    assert main(["status", str(run.path), "--csv", "--top", "5"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["trial"] for row in table] == ["" if row["trial"] is None else str(row["trial"])
                                              for row in status["rows"]]
    assert [float(row["accuracy"]) for row in table] == [row["accuracy"] for row in status["rows"]]
    assert [row["reference"] for row in table if row["trial"] == ""] == \
        [row["reference"] for row in status["rows"] if row["trial"] is None]


def test_json_and_csv_exclude_each_other(run, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["status", str(run.path), "--json", "--csv"])
    assert exit.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
