"""Every library the installed packages import (inside functions too) is declared in setup.cfg's
install_requires, or is an optional extra imported with a one-line error when missing."""
from __future__ import annotations

import configparser
import importlib.metadata
import re
import sys

from tests.guard.test_layering import REPOSITORY, import_graph

# Imported only where a user asks for them, each behind a one-line error naming what to install.
OPTIONAL = {"pandas": "Run.trials_dataframe", "psycopg2": "PostgreSQL storage (the postgres extra)"}


def declared() -> set[str]:
    config = configparser.ConfigParser()
    config.read(REPOSITORY / "setup.cfg")
    lines = config["options"]["install_requires"].split("\n")
    return {re.split(r"[<>=!\[; ]", line.strip())[0].lower().replace("_", "-") for line in lines if line.strip()}


def test_every_imported_library_is_declared():
    distributions = importlib.metadata.packages_distributions()
    _, raw = import_graph()
    missing = set()
    for module, name, line, extra in raw:
        top = name.split(".")[0]
        if extra or not top or top in ("attnas", "__future__") or top in sys.stdlib_module_names:
            continue
        if top in OPTIONAL:
            continue
        names = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
        if not names & declared():
            missing.add(f"{module} (line {line}) imports {top}, from {sorted(names)}: not in install_requires")
    assert not missing, "\n".join(sorted(missing))
