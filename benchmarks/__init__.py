"""Scripts that measure attnas and write benchmarks/RESULTS.md (each script owns one section)."""
