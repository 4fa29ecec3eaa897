"""Scoring a cell: data (synthetic spatiotemporal tasks, real video folders) and the proxy trainer."""
