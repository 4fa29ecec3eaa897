"""AttnBench's space (a documented subset of the default space, counted by the space's own counter) and its table
format and loader (search_space/attnbench.py)."""
from __future__ import annotations

import gzip

import pytest

from attnas.search_space import OPERATIONS, load_space
from attnas.search_space import attnbench
from attnas.search_space.attnbench import TableError, attnbench_space, enumerate_cells, load_table
from tests.attnbench_tables import write_made_up_table

ATTNBENCH_SIZE = 7452


@pytest.mark.slow
def test_the_space_is_a_subset_of_the_default_with_every_op_and_dim_and_its_counted_size():
    space, default = attnbench_space(), load_space("default")
    size = space.count()
    assert size.exact and size.cells == ATTNBENCH_SIZE and space.size() == ATTNBENCH_SIZE
    cells = enumerate_cells(space)
    hashes = [cell.hash for cell in cells]
    assert len(cells) == ATTNBENCH_SIZE and hashes == sorted(hashes) and len(set(hashes)) == len(hashes)
    assert all(default.contains(cell) for cell in cells), "every AttnBench cell is a cell of the default space"
    seen = {(node.op, dict(node.attrs).get("dim")) for cell in cells for node in cell.nodes}
    for op, choices in default.ops.items():
        dims = choices.dims() if op != "distribute" else default.gather_dims
        assert {(op, dim) for dim in dims} <= seen, op
    assert {op for op, _ in seen} == set(OPERATIONS) & set(default.ops)
    assert max(len(cell.nodes) for cell in cells) == 3
    assert [c.hash for c in enumerate_cells(space)] == hashes, "deterministic: the build shards and resumes by it"


def test_a_partial_table_says_how_much_of_the_space_it_holds_and_names_a_missing_cell(tmp_path):
    path = write_made_up_table(tmp_path / "t.json.gz", space="tiny", cells=5, epochs=3, seeds=2)
    table = load_table(path)
    assert len(table.records) == 5 and table.space_size == 13 and not table.complete and table.epochs == 3
    assert table.describe().startswith(f"{path}: PARTIAL AttnBench table, 5 cells of the space's 13, seeds [0, 1]")
    record = next(iter(table.records.values()))
    assert record.accuracy == pytest.approx(sum(r["top1"] for r in record.runs) / 2)
    assert record.curve[-1] == pytest.approx(record.accuracy)
    assert len(record.curve) == 3
    assert table.best.accuracy == max(r.accuracy for r in table.records.values())
    missing = next(c for c in enumerate_cells(load_space("tiny")) if c.hash not in table.records)
    with pytest.raises(TableError, match=rf"^{path}: cells: no cell with hash {missing.hash} \(the table holds 5 "
                                         r"of the space's 13 cells\); expected a cell of the table$"):
        table.record(missing.hash)
    full = load_table(write_made_up_table(tmp_path / "full.json.gz", space="tiny"))
    assert full.complete and "complete AttnBench table, 13 cells" in full.describe()


def test_missing_corrupt_or_foreign_files_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(attnbench, "shipped_table_path", lambda: tmp_path / "attnbench.json.gz")
    with pytest.raises(TableError, match="the AttnBench table is not built yet; build it with"):
        load_table("attnbench")
    write_made_up_table(tmp_path / "attnbench.json.gz", space="tiny", cells=2)
    assert len(load_table("attnbench").records) == 2, "`attnbench` is the table in the package"
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(TableError, match=r"bad\.json\.gz: not a gzip'd JSON AttnBench table"):
        load_table(tmp_path / "bad.json.gz")
    with gzip.open(tmp_path / "other.json.gz", "wt") as handle:
        handle.write('{"format": "something else"}')
    with pytest.raises(TableError, match=r"other\.json\.gz: format: expected 'attnas\.attnbench'"):
        load_table(tmp_path / "other.json.gz")
