"""The Python API along a user's path: the README's example (a search, its trials, export, build), then the same
run reopened, a second search into the same folder refused, cells exported and inserted without a run, and every
mistake raised as a typed, one-line `attnas.AttnasError` that the CLI turns into exit code 2."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

import attnas
from attnas.experiments.cli import main
from tests.experiments.tiny import write_tiny

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python_example() -> str:
    text = README.read_text()
    section = text[text.index("## Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch, ray_local):
    experiment = write_tiny(tmp_path)
    code = readme_python_example()
    assert "experiments/configs/quickstart.yaml" in code
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):  # the quick-start's settings take minutes; the tiny experiment seconds
        exec(compile(code.replace("experiments/configs/quickstart.yaml", experiment), "README.md", "exec"), namespace)
    printed = out.getvalue()
    run = namespace["run"]
    assert run.path == tmp_path / "runs" / "from-python"
    assert sum(run.counts().values()) == 4 and run.counts()["complete"] >= 1
    frame = run.trials_dataframe()
    assert list(frame["number"]) == [0, 1, 2, 3]
    assert frame["accuracy"].max() == pytest.approx(run.best.value)
    assert run.best_cell.to_yaml() in printed
    assert "controller: controller 'evolutoin' is unknown (did you mean 'evolution'?)" in printed
    # the exported module needs only torch and computes the same function as the cell built from the spec
    source = (tmp_path / "best_cell.py").read_text()
    assert f"trial{run.best.number}" in source and "import attnas" not in source
    module = namespace["module"]
    assert isinstance(module, torch.nn.Module)
    clip = torch.randn(2, 64, 2, 4, 4)
    assert torch.equal(module.eval()(clip), clip)  # identity at initialisation
    assert namespace["same"].best == run.best

    # a second search into the same folder is refused without touching the first one's history
    with pytest.raises(attnas.RunExistsError, match="already holds a search with 4 trials"):
        attnas.search(experiment, name="from-python")
    assert len(attnas.load_run(run.path).trials) == 4


def test_export_and_insert_without_a_run(tmp_path):
    cell = attnas.load_zoo("non_local")
    path = attnas.export(cell, tmp_path / "nl.py", channels=16)
    namespace: dict = {}
    exec(path.read_text(), namespace)
    exported = namespace["AttentionCell"]()
    built = attnas.build_cell(cell, channels=16)
    exported.load_state_dict(built.state_dict())
    with torch.no_grad():
        for parameter in built.parameters():
            parameter.add_(0.1)
        exported.load_state_dict(built.state_dict())
        clip = torch.randn(2, 16, 3, 4, 4)
        assert torch.allclose(exported.eval()(clip), built.eval()(clip), atol=1e-6)
    assert attnas.export(cell.to_dict(), tmp_path / "nl.yaml").read_text() == cell.to_yaml()
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 16, 1), torch.nn.ReLU())
    assert attnas.insert(model, cell, at=["0"]) is model
    assert len([m for m in model.modules() if type(m).__name__ == "CellAfter"]) == 1
    with pytest.raises(attnas.AttnasError, match="channels"):
        attnas.export(cell, tmp_path / "x.py")


def test_mistakes_are_typed_one_line_errors_and_exit_2_in_the_cli(tmp_path, capsys):
    with pytest.raises(attnas.RunNotFoundError, match="nowhere: no such run"):
        attnas.load_run("nowhere", runs_dir=tmp_path)
    with pytest.raises(attnas.ConfigError, match=r"budget\.trials"):
        attnas.search({"name": "x", "budget": {"trials": 0}}, runs_dir=tmp_path)
    with pytest.raises(attnas.SpecError):
        attnas.build_cell({"nodes": {}}, channels=8)
    with pytest.raises(attnas.AttnasError, match="time"):
        attnas.search(write_tiny(tmp_path), runs_dir=tmp_path, time="soon")
    assert main(["status", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such run" in err and "Traceback" not in err
    for name in ("ConfigError", "SpecError", "RunNotFoundError", "RunExistsError", "EvaluatorImportError",
                 "CellBuildError", "CellInputError", "SpaceExhausted"):
        assert issubclass(getattr(attnas, name), attnas.AttnasError)
