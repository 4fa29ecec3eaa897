"""Hostile or careless input along the user's path (issue 21): text that reaches generated code, run names that
would leave the runs folder, the dashboard's write API, tampered trial records. Each test drives the CLI on a real
run folder: a tiny search run once for the session (conftest.py), or the synthetic history written the way the
driver writes it."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from attnas.experiments.cli import main
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.run_folder import RUN_FILE, open_run
from attnas.search_space import CellSpec
from tests.experiments.test_dashboard_server import start_cli_dashboard
from tests.experiments.tiny import write_tiny

PAYLOAD = 'import os; open(os.path.join(os.getcwd(), "PWNED"), "w").close()'
HOSTILE_TEXTS = [
    f'x"""; {PAYLOAD}; """',
    f"x'''; {PAYLOAD}; '''",
    f'x"\n{PAYLOAD}\n"',
    'back\\slash\\',
    'ends in a quote"',
    'new\nline\r\n# nodes: []',
]


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """`attnas ARGS` as a user runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "attnas.experiments.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)


@pytest.fixture
def searched(finished_tiny_run):
    """A real run folder: `attnas search` of the tiny experiment, two trials (tests change copies of it only)."""
    return finished_tiny_run


def copy_run(source: Path, target: Path) -> Path:
    """The run folder copied (the user moved or duplicated it; a run folder is relocatable as it is)."""
    shutil.copytree(source, target)
    return target


def tamper(run: Path, number: int, key: str, value_json: str) -> None:
    """Overwrite trial `number`'s user attribute `key` in the SQLite history with raw text, as a hand edit would."""
    with sqlite3.connect(run / "history.db") as connection:
        (trial_id,) = connection.execute("SELECT trial_id FROM trials WHERE number = ?", (number,)).fetchone()
        changed = connection.execute("UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = ?",
                                     (value_json, trial_id, key)).rowcount
    assert changed == 1


IMPORT_EACH = """
import importlib.util, json, os, sys
results = []
for index, (path, expression) in enumerate(json.loads(sys.argv[1])):
    folder = os.path.dirname(path)
    os.chdir(folder)
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"generated{index}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    sys.path.remove(folder)
    results.append([repr(eval(expression)), os.path.exists("PWNED")])
print(json.dumps(results))
"""


def import_in_subprocess(modules: list[tuple[Path, str]]) -> list[tuple[str, bool]]:
    """Import each generated module in a fresh interpreter, from its own folder, and give repr(`expression`) and
    whether a PWNED file then exists in that folder, module by module. One interpreter imports them all, one after
    the other: starting one (with torch) takes seconds."""
    argument = json.dumps([[str(path), expression] for path, expression in modules])
    result = subprocess.run([sys.executable, "-c", IMPORT_EACH, argument], capture_output=True, text=True,
                            cwd=modules[0][0].parent, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return [tuple(entry) for entry in json.loads(result.stdout.strip().splitlines()[-1])]


# ------------------------------------------------------------------------------------------ 1. generated code
@pytest.mark.slow
def test_export_escapes_run_names_and_every_text_it_writes_into_code(searched, tmp_path):
    best = open_run(searched).history().best(1)[0]
    runs = []
    for index, text in enumerate(HOSTILE_TEXTS):
        run = copy_run(searched, tmp_path / "runs" / text.replace("/", "_"))
        out = tmp_path / f"out{index}"
        out.mkdir()
        assert main(["export", str(run), "--best", "-o", str(out / "cell.py")]) == 0
        assert main(["export", str(run), "--best", "-o", str(out / "cell.yaml")]) == 0
        assert CellSpec.from_yaml(str(out / "cell.yaml")).same_cell(CellSpec.from_dict(best.cell))
        runs.append((text, run, out / "cell.py"))
    # a tampered hash never reaches the code: the module carries the hash computed from the cell
    tampered = copy_run(searched, tmp_path / "runs" / "tampered_hash")
    tamper(tampered, best.number, "hash", json.dumps(HOSTILE_TEXTS[0]))
    assert main(["export", str(tampered), "--trial", str(best.number), "-o", str(tmp_path / "hashed.py")]) == 0
    imported = import_in_subprocess([(module, "(m.__doc__, m.SPEC_HASH, m.AttentionCell.__doc__)")
                                     for _, _, module in runs] + [(tmp_path / "hashed.py", "m.SPEC_HASH")])
    for (text, run, module), (doc, pwned) in zip(runs, imported[:-1], strict=True):
        assert not pwned and not (module.parent / "PWNED").exists(), \
            f"run name {text!r}: importing the exported module ran its code"
        doc = eval(doc)
        assert doc[0].startswith(f"attnas_{run.name}_trial{best.number} cell {best.hash}")
        assert doc[1] == best.hash and best.hash in doc[2]
    assert imported[-1] == (repr(best.hash), False)
    assert not (tmp_path / "PWNED").exists()


def test_exported_module_keeps_any_cell_name_as_text(tmp_path):
    """The cell's own name (a spec field any YAML can set) is written into the module's docstring as plain text."""
    from attnas.cells.export import export
    from attnas.search_space import load_zoo

    texts = HOSTILE_TEXTS + ["nul\x00 and bell\x07"]
    specs = [CellSpec.from_dict({**load_zoo("non_local").to_dict(), "name": text}) for text in texts]
    paths = [export(spec, tmp_path / f"named{index}.py", channels=8) for index, spec in enumerate(specs)]
    imported = import_in_subprocess([(path, "m.__doc__") for path in paths])
    for text, spec, (doc, pwned) in zip(texts, specs, imported, strict=True):
        assert not pwned, f"cell name {text!r}: importing the exported module ran its code"
        assert eval(doc).startswith(f"{text} cell {spec.hash}")
    assert not (tmp_path / "PWNED").exists()


# ------------------------------------------------------------------------------------------------ 2. run names
@pytest.mark.parametrize("name", ["../escaped", "/tmp/attnas-absolute", "..", ".", "-flag", 'quo"te', 'x"""y',
                                  "back\\slash", "new\nline", "trailing\n", "a" * 300, "sub/dir", ""])
def test_run_names_outside_the_rule_are_refused_before_anything_is_written(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = write_tiny(tmp_path, budget={"trials": 1}, concurrency=1)
    before = set(Path("/tmp").glob("attnas-absolute*"))
    with pytest.raises(SystemExit) as exited:  # argparse's own exit, as for every bad flag
        main(["search", config, f"--name={name}", "--quiet"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--name" in err and "letters, digits" in err and len(err.strip().splitlines()) == 1
    assert len(err) < 400, "the value is cut in the message"
    # the experiment's own name goes through the same rule
    (tmp_path / "named.yaml").write_text(Path(config).read_text().replace("name: tiny", f"name: {json.dumps(name)}"))
    assert main(["search", "named.yaml", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnas: error: named.yaml: name: expected") and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob(RUN_FILE)) and set(Path("/tmp").glob("attnas-absolute*")) == before
    assert not (tmp_path.parent / "escaped").exists()


# ------------------------------------------------------------------------------------------------ 3. dashboard
def request(method: str, url: str, body: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method=method), timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_dashboard_is_read_only_unless_writes_are_allowed(tmp_path, capsys):
    run = write_synthetic_history(tmp_path / "runs", name="served", trials=4)
    study = run.history().study._study_id
    process, _, port = start_cli_dashboard(run.path)
    base = f"http://127.0.0.1:{port}"
    try:
        assert request("GET", f"{base}/api/studies/{study}") == 200
        writes = [("DELETE", f"/api/studies/{study}", None),
                  ("POST", f"/api/studies/{study}/rename", b'{"study_name": "renamed"}'),
                  ("PUT", f"/api/studies/{study}/note", b'{"version": 1, "body": "defaced"}'),
                  ("POST", "/api/studies", b'{"study_name": "new", "directions": ["minimize"]}'),
                  ("POST", "/api/trials/1/tell", b'{"state": "Fail"}')]
        for method, path, body in writes:
            assert request(method, base + path, body) == 405, (method, path)
        assert request("GET", f"{base}/api/studies/{study}") == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert main(["status", str(run.path)]) == 0
    assert "4 trials" in capsys.readouterr().out
    # asked for, the writes go through (the refusal above is the read-only wrapper, not a broken request)
    process, _, port = start_cli_dashboard(run.path, "--allow-writes")
    try:
        assert request("DELETE", f"http://127.0.0.1:{port}/api/studies/{study}") == 204
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_dashboard_warns_when_it_listens_beyond_this_machine(tmp_path):
    run = write_synthetic_history(tmp_path / "runs", name="exposed", trials=2)
    for extra, warning in (((), None), (("--host", "0.0.0.0"), "listens on '0.0.0.0'"),
                           (("--host", ""), "listens on every network interface"), (("--host", "127.0.0.2"), None)):
        process, _, _ = start_cli_dashboard(run.path, *extra)
        process.terminate()
        _, err = process.communicate(timeout=30)
        if warning is None:
            assert "warning: the dashboard" not in err, err
        else:
            assert f"warning: the dashboard {warning}" in err and "no authentication" in err, err
            assert "read the whole search history" in err


# ------------------------------------------------------------------------------------- 6. tampered records
def test_tampered_records_are_named_and_the_others_still_served(tmp_path, capsys):
    run = write_synthetic_history(tmp_path / "runs", name="tampered", trials=12, references=False).path
    records = {r.number: r for r in open_run(run).history().trials()}
    complete = sorted((r for r in records.values() if r.state == "complete"), key=lambda r: -r.value)
    broken_cell, broken_values, broken_hash = (r.number for r in complete[:3])
    tamper(run, broken_cell, "cell", "{not json")
    tamper(run, broken_values, "values", '"a string"')
    tamper(run, broken_hash, "hash", "17")
    assert main(["status", str(run)]) == 0
    out = capsys.readouterr().out
    for number, field in ((broken_cell, "cell"), (broken_values, "values"), (broken_hash, "hash")):
        assert f"trial {number}: damaged record: field '{field}'" in out
    assert complete[3].hash[:8] in out  # the status table shows 8 characters of a hash
    assert main(["export", str(run), "--best", "-o", str(tmp_path / "best.yaml")]) == 0
    assert CellSpec.from_yaml(str(tmp_path / "best.yaml")).hash == complete[3].hash
    assert main(["export", str(run), "--trial", str(broken_cell), "-o", str(tmp_path / "broken.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"trial {broken_cell}: damaged record: field 'cell': not valid JSON" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["report", str(run), "-o", str(tmp_path / "report.html")]) == 0
    assert complete[3].hash in (tmp_path / "report.html").read_text()
    # a cell that is JSON but not a valid spec (a node name that would be code) is named the same way
    hostile_node = {"op": "map_attention", "inputs": {"x": "input"}, "dim": "channel", "gate": "sigmoid",
                    "pooling": "avg", "reduction": 4}
    tamper(run, broken_cell, "cell", json.dumps({"width": 0.5, "nodes": {'x"""; import os': hostile_node},
                                                 "output": ['x"""; import os']}))
    assert main(["export", str(run), "--trial", str(broken_cell), "-o", str(tmp_path / "broken.py")]) == 2
    assert f"trial {broken_cell}: damaged record: field 'cell': expected a valid cell spec" in \
        capsys.readouterr().err
    assert not (tmp_path / "broken.py").exists()


@pytest.mark.slow
def test_resume_goes_on_past_a_tampered_record(searched, tmp_path):
    run = copy_run(searched, tmp_path / "runs" / "resumed")
    tamper(run, 0, "cell", "{not json")  # Optuna itself cannot read this study any more: one line, nothing lost
    result = cli("resume", str(run), "--trials", "3", "--quiet")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-3000:]
    assert "trial 0: damaged record: field 'cell': not valid JSON" in result.stderr
    assert len(open_run(run).history().trials()) == 2
    tamper(run, 0, "cell", json.dumps(open_run(searched).history().trials()[0].cell))
    tamper(run, 0, "values", '"a string"')
    tamper(run, 1, "hash", "17")
    result = cli("resume", str(run), "--trials", "3", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trial 0: damaged record: field 'values'" in result.stderr
    assert "trial 1: damaged record: field 'hash'" in result.stderr
    records = open_run(run).history().trials()
    assert len(records) == 3 and records[2].state == "complete" and records[2].problem is None


# ------------------------------------------------------------------------------- 4. unbounded specs and files
def write_cell(folder: Path, name: str, node: dict) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"width": 0.5, "nodes": {"a": node}, "output": ["a"]}))
    return str(path)


def test_absurd_specs_and_files_end_in_one_line_naming_the_field(tmp_path, capsys):
    config = write_tiny(tmp_path)
    attention = {"op": "map_attention", "inputs": {"x": "input"}, "dim": "spatial", "gate": "sigmoid",
                 "pooling": "avg"}
    cases = [
        (write_cell(tmp_path, "kernel", {**attention, "kernel": 1_000_000_001}), "attribute 'kernel': expected an odd"),
        (write_cell(tmp_path, "descriptors", {"op": "gather", "inputs": {"x": "input"}, "dim": "spatial",
                                              "descriptors": 1e300}), "attribute 'descriptors': expected a number"),
        (write_cell(tmp_path, "heads", {"op": "dot_attention", "inputs": {"query": "input", "key": "input"},
                                        "dim": "spatial", "similarity": "softmax", "heads": 10**9}),
         "attribute 'heads': expected an integer from 1 to"),
        (write_cell(tmp_path, "long", {**attention, "kernel": "x" * 5000}), "(5002 characters)"),
    ]
    chain, previous = {}, "input"
    for index in range(10_000):
        chain[f"n{index}"] = {"op": "combine", "inputs": {"a": previous, "b": previous}, "mode": "add"}
        previous = f"n{index}"
    (tmp_path / "chain.yaml").write_text(json.dumps({"width": 0.5, "nodes": chain, "output": [previous]}))
    cases.append((str(tmp_path / "chain.yaml"), "nodes: expected at most 32 nodes, got 10000"))
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    cases.append((str(tmp_path / "zero.yaml"), "not a regular file"))
    os.mkfifo(tmp_path / "fifo.yaml")
    cases.append((str(tmp_path / "fifo.yaml"), "not a regular file"))
    for cell, message in cases:
        assert main(["evaluate", cell, "--config", config]) == 2, cell
        err = capsys.readouterr().err
        assert message in err and cell.split("/")[-1] in err and len(err.strip().splitlines()) == 1, err
        assert len(err) < 400, err
    for experiment in ("zero.yaml", "fifo.yaml"):  # the experiment file itself
        assert main(["search", str(tmp_path / experiment), "--dry-run"]) == 2
        assert "not a regular file" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ 5. faults and reasons
def test_train_checks_its_output_before_training(tmp_path, capsys):
    config = write_tiny(tmp_path, evaluator={"epochs": 50, "data": {"train_size": 4096}})
    assert main(["train", "non_local", "--config", config, "-o", str(tmp_path / "no" / "dir" / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert "-o" in err and "does not exist" in err and "train" not in capsys.readouterr().out
    assert main(["train", "non_local", "--config", config, "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("resources, message", [
    ({"cpus": float("inf")}, "resources.cpus: expected a finite number, got float inf"),
    ({"cpus": float("nan")}, "resources.cpus: expected a finite number, got float nan"),
    ({"gpus": 1.0e-300}, "resources.gpus: expected 0 or a number >= 0.0001"),
    ({"gpus": float("inf")}, "resources.gpus: expected a finite number, got float inf"),
])
def test_absurd_resources_are_refused_before_ray_starts(resources, message, tmp_path, capsys):
    config = write_tiny(tmp_path, resources=resources)
    assert main(["search", config, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_reading_commands_never_create_storage(tmp_path, capsys):
    run = write_synthetic_history(tmp_path / "runs", name="lost", trials=2, references=False).path
    (run / "history.db").unlink()
    for command in (["status", str(run)], ["export", str(run), "-o", str(tmp_path / "c.yaml")],
                    ["report", str(run), "-o", str(tmp_path / "r.html")], ["resume", str(run)]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert "history" in err and "is missing" in err and len(err.strip().splitlines()) == 1
        assert not (run / "history.db").exists(), f"`attnas {command[0]}` created an empty history"


def trial_worker_pids(run: Path) -> list[int]:
    """Process ids of the Ray workers training this run's trials (their working folder is named after the trial's
    folder under run/ray/)."""
    folders = {p.name for p in run.glob("ray/tune-*/trial-*")}
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if Path(cwd).name in folders and "working_dirs" in cwd:
                pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_a_killed_worker_is_recorded_with_rays_reason(tmp_path):
    import signal
    import time

    if not Path("/proc/self/cwd").exists():
        pytest.skip("needs /proc to find the trial's worker process")
    from tests.experiments.tiny import TINY

    config = write_tiny(tmp_path, name="killed", budget={"trials": 1}, concurrency=1, retries=0,
                        evaluator={**TINY["evaluator"], "epochs": 200})
    run = tmp_path / "runs" / "killed"
    search = subprocess.Popen([sys.executable, "-m", "attnas.experiments.cli", "search", config, "--runs-dir",
                               str(tmp_path / "runs"), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 600
        while not trial_worker_pids(run) and time.time() < deadline and search.poll() is None:
            time.sleep(1)
        pids = trial_worker_pids(run)
        assert pids, "the trial's worker never started"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        out, err = search.communicate(timeout=600)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    assert search.returncode == 1, err[-2000:]
    (record,) = open_run(run).history().trials()
    assert record.state == "failed"
    assert "raised or died" not in record.reason and "worker process has died" in record.reason, record.reason
