"""`import attnas` works from any directory: a user's own cells/, experiments/, controllers/, evaluators/ or
search_space/ folder changes nothing, and a wheel built from the repository works outside it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGES = ("cells", "experiments", "controllers", "evaluators", "search_space")

# Run in a folder outside the repository: the shipped YAML and every package are found through attnas.* only.
CHECK = """
import attnas, attnas.cells, attnas.search_space
from attnas.search_space import load_space, load_zoo, zoo_names
from attnas.experiments.config import load_experiment
from attnas.search_space.resources import space_path
assert "non_local" in zoo_names(), zoo_names()
cell = load_zoo("double_attention")
module = attnas.build_cell(cell, channels=8)
assert load_space("small").name == "small"
print("ok", attnas.__file__, attnas.cells.__file__, load_experiment.__module__, space_path("default"))
"""


def run_check(cwd: Path, python: str = sys.executable, env: dict | None = None) -> str:
    done = subprocess.run([python, "-c", CHECK], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_users_own_package_folders_change_nothing(tmp_path):
    for name in PACKAGES:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "__init__.py").write_text("raise RuntimeError('the user\\'s own folder was imported')\n")
    (tmp_path / "cells" / "build.py").write_text("raise RuntimeError('user cells.build')\n")
    out = run_check(tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert out.startswith("ok ")
    assert str(tmp_path) not in out  # every module came from the installed attnas


@pytest.mark.slow
def test_a_wheel_built_from_the_repository_works_outside_it(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build's own folders (build/, *.egg-info) stay out of the tree
    shutil.copytree(REPOSITORY, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "runs", "__pycache__", ".pytest_cache", ".hypothesis"))
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("attnas-*.whl"))
    # the wheel alone goes into a fresh folder put first on the path; its dependencies come from this environment
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    for name in PACKAGES:  # the user's folders again, in the working directory
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise RuntimeError('shadowed')\n")
    out = run_check(tmp_path, env={"PYTHONPATH": str(target)})
    assert f"{target}/attnas/__init__.py" in out and f"{target}/attnas/cells/__init__.py" in out
    assert f"{target}/attnas/experiments/configs/spaces/default.yaml" in out
    assert str(REPOSITORY) not in out and str(source) not in out
    top_level = {p.name for p in target.iterdir()}
    assert "attnas" in top_level and not top_level & set(PACKAGES)  # nothing generic lands in site-packages


def test_import_attnas_and_the_torch_free_parts_load_no_torch(tmp_path):
    code = ("import sys, attnas, attnas.search_space, attnas.controllers; attnas.search; "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['torch']"  # the API needs torch (cells), and Ray only once a search starts
    code = "import sys, attnas, attnas.search_space, attnas.controllers; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
