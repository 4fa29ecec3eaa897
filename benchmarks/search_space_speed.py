"""Search-space figures for RESULTS.md: the size of the shipped spaces and the throughput of sample, mutate, hash,
encode and deduplicate (one core, pure Python)."""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.results import table, write_section
from attnas.search_space import CellSpec, load_space, unique_cells


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 specs instead of 100,000 for deduplication")
    args = parser.parse_args()
    dedupe_count = 10_000 if args.quick else 100_000

    size_rows = []
    for name in ("small", "default"):
        space = load_space(name)
        started = time.perf_counter()
        size = space.count()
        elapsed = time.perf_counter() - started
        cells = f"{size.cells:,.0f}" if size.exact else f"{size.cells:,.3g} +/- {size.standard_error:,.2g}"
        size_rows.append([name, space.max_nodes, f"{size.ordered_specs:,}", cells,
                          "exact" if size.exact else "estimate", f"{elapsed:.2f}", size.method])

    speed_rows = []
    for name in ("small", "default"):
        space = load_space(name)
        rng = np.random.default_rng(0)
        n = 5_000
        started = time.perf_counter()
        cells = [space.sample(rng) for _ in range(n)]
        sample_s = time.perf_counter() - started
        started = time.perf_counter()
        for cell in cells:
            space.mutate(cell, rng)
        mutate_s = time.perf_counter() - started
        fresh = [CellSpec.from_dict(c.to_dict()) for c in cells]
        started = time.perf_counter()
        for cell in fresh:
            cell.hash
        hash_s = time.perf_counter() - started
        fresh = [CellSpec.from_dict(c.to_dict()) for c in cells]
        started = time.perf_counter()
        for cell in fresh:
            space.encode_vector(cell)
        vector_s = time.perf_counter() - started
        fresh = [CellSpec.from_dict(c.to_dict()) for c in cells]
        started = time.perf_counter()
        for cell in fresh:
            space.wl_features(cell)
        wl_s = time.perf_counter() - started
        speed_rows.append([name, rate(n, sample_s), rate(n, mutate_s), rate(n, hash_s), rate(n, vector_s),
                           rate(n, wl_s)])

    space = load_space("default")
    rng = np.random.default_rng(1)
    data = [space.sample(rng).to_dict() for _ in range(dedupe_count)]
    fresh = [CellSpec.from_dict(d) for d in data]  # new objects: no hash cached
    started = time.perf_counter()
    unique = unique_cells(fresh)
    dedupe_s = time.perf_counter() - started

    body = "\n\n".join([
        "### Size of the shipped spaces\n\n" + table(
            ["space", "max nodes", "ordered specs", "distinct cells", "how", "seconds", "method"], size_rows),
        "### Throughput, specs per second, one core (hash/encode on fresh objects, nothing cached)\n\n" + table(
            ["space", "sample", "mutate", "hash", "encode vector", "WL features"], speed_rows),
        f"### Deduplication\n\n{dedupe_count:,} sampled default-space specs (fresh objects) deduplicated by hash "
        f"with isomorphism confirmation (`search_space.unique_cells`): **{dedupe_s:.2f} s** "
        f"({len(unique):,} distinct; target: 100,000 in under 10 s on one core).",
    ])
    write_section("search_space", "Search space: size and throughput (issue: foundation and search space)", body)
    print(body)


if __name__ == "__main__":
    main()
