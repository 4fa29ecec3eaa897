"""Writing one benchmark's section of benchmarks/RESULTS.md, leaving the other sections as they are.

Benchmarks run from the repository root as modules: `python -m benchmarks.NAME [--quick]`.

Each section is delimited by HTML comments naming it, so scripts can be re-run in any order.
"""
from __future__ import annotations

import os
import platform
import re
import shlex
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = ("# attnas benchmark results\n\nEvery section below is written by the script it names, with the command "
          "that reproduces it. Do not edit by hand.\n")


def machine() -> str:
    """One line describing where the figures were measured."""
    import numpy

    parts = [platform.machine(), f"{os.cpu_count()} cores", f"Python {platform.python_version()}",
             f"numpy {numpy.__version__}"]
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].__version__}")
    return ", ".join(parts)


def command() -> str:
    """The command line that ran this script, as a user would type it."""
    argv = list(sys.argv)
    module = "benchmarks." + Path(argv[0]).stem
    return "python -m " + " ".join([module, *map(shlex.quote, argv[1:])])


def write_section(name: str, title: str, body: str, *, reproduce: str | None = None) -> None:
    """Replace (or append) the section `name` of RESULTS.md with `body`, stamped with command, date and machine."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- section: {name} -->\n## {title}\n\n"
               f"Reproduce: `{reproduce or command()}`  \nMeasured {stamp} on {machine()}.\n\n"
               f"{body.strip()}\n<!-- end: {name} -->\n")
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- section: {re.escape(name)} -->.*?<!-- end: {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    fd, tmp = tempfile.mkstemp(dir=RESULTS.parent, prefix=".RESULTS.", suffix=".md")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, RESULTS)


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
