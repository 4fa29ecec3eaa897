"""`attnas dashboard` and `attnas report` on a finished run written the way the driver writes it (History plus the
dashboard publisher, via experiments.dashboard.synthetic): what the server binds to, what it serves, the report's
content, the one-line errors, and the speed-up of optuna-dashboard's per-trial lookups (same answers)."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from attnas.experiments.cli import main
from attnas.experiments.dashboard import speedup
from attnas.experiments.dashboard.figures import FIGURE_TITLES
from attnas.experiments.dashboard.report import build_report
from attnas.experiments.dashboard.server import DashboardServer
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.history import COMPLETE

TRIALS = 12


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    yield write_synthetic_history(root, name="finished", trials=TRIALS, controllers=("random", "evolution"))


def get(url: str):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.headers.get("Content-Type"), response.read()


def listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp{,6}) of the sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_server_binds_loopback_and_serves_trials_notes_drawings_and_figures(finished_run):
    with DashboardServer(finished_run.path, port=0).start() as server:
        host, port = server.address
        assert host == "127.0.0.1"
        if os.path.exists("/proc/net/tcp"):
            assert listening(port) == {"0100007F"}  # 127.0.0.1, nothing else
        study_id = server.history.study._study_id
        kind, body = get(f"http://{host}:{port}/api/studies/{study_id}")
        detail = json.loads(body)
        assert len(detail["trials"]) == TRIALS
        assert {g["id"] for g in detail["plotly_graph_objects"]} == set(FIGURE_TITLES)
        for trial in detail["trials"]:
            hash_ = next(a["value"] for a in trial["user_attrs"] if a["key"] == "hash")
            assert trial["note"]["body"].startswith(f"### Cell `{hash_}`")
            [drawing] = trial["artifacts"]
            assert drawing["filename"] == f"cell-{hash_}.svg"
        trial = detail["trials"][0]
        kind, svg = get(f"http://{host}:{port}/artifacts/{study_id}/{trial['trial_id']}/"
                        f"{trial['artifacts'][0]['artifact_id']}")
        assert kind == "image/svg+xml" and svg.startswith(b"<svg") and b'class="node"' in svg
        kind, page = get(server.url)
        assert kind.startswith("text/html") and b"bundle.js" in page


@pytest.mark.slow
def test_server_is_live_while_the_history_grows(tmp_path_factory):
    from attnas.experiments.dashboard.publisher import DashboardPublisher
    from attnas.search_space import load_zoo

    root = tmp_path_factory.mktemp("runs")
    run = write_synthetic_history(root, name="live", trials=2)
    with DashboardServer(run.path, port=0).start() as server:
        host, port = server.address
        url = f"http://{host}:{port}/api/studies/{server.history.study._study_id}"
        assert len(json.loads(get(url)[1])["trials"]) == 2
        # a writer in another connection, as the driver is: a trial starts and finishes
        history = run.history()
        publisher = DashboardPublisher.for_run(run, history)
        spec = load_zoo("non_local")
        number = history.start(cell=spec.to_dict(), cell_hash=spec.hash, controller="random")
        publisher.trial_started(number)
        history.finish(number, state=COMPLETE, values={"accuracy": 0.99, "macs": 1e6})
        publisher.trial_finished(number)
        deadline = time.time() + 30  # the dashboard caches the trial list for 2 s on small studies
        while len(json.loads(get(url)[1])["trials"]) < 3 and time.time() < deadline:
            time.sleep(0.5)
        detail = json.loads(get(url)[1])
        assert len(detail["trials"]) == 3 and detail["trials"][2]["note"]["body"].startswith(
            f"### Cell `{spec.hash}`")
        assert detail["best_trials"][0]["number"] == number


def test_speedup_gives_optuna_dashboards_own_answers(finished_run):
    from optuna_dashboard import _note, _serializer

    assert speedup.install()
    history = finished_run.history()
    storage = history.study._storage
    study_id = history.study._study_id
    trials = history.study.get_trials(deepcopy=False)
    # also an artifact in optuna-dashboard's older place (the study's attributes) and a trial with no note
    storage.set_study_system_attr(study_id, f"dashboard:artifacts:{trials[1]._trial_id}:0a1b",
                                  json.dumps({"artifact_id": "0a1b", "filename": "x.png", "mimetype": "image/png",
                                              "encoding": None}))
    attrs = storage.get_study_system_attrs(study_id)
    attrs.pop(f"dashboard:{trials[2]._trial_id}:note_ver")
    fast_note, slow_note = _note.get_note_from_system_attrs, _note.get_note_from_system_attrs.original
    fast_list, slow_list = _serializer.list_trial_artifacts, _serializer.list_trial_artifacts.original
    assert fast_note is not slow_note and fast_list is not slow_list
    for trial in trials:
        assert fast_note(attrs, trial._trial_id) == slow_note(attrs, trial._trial_id)
        assert fast_list(attrs, trial.system_attrs, trial) == slow_list(attrs, trial.system_attrs, trial)
    assert fast_note(attrs, None) == slow_note(attrs, None)
    assert fast_note(attrs, trials[2]._trial_id) == {"version": 0, "body": ""}
    assert len(fast_list(attrs, trials[1].system_attrs, trials[1])) == 2


def test_the_fast_history_reader_matches_optunas(finished_run):
    from attnas.experiments.dashboard.data import load_points
    from attnas.experiments.optuna_tables import read_rows

    history = finished_run.history()
    study = history.study
    assert len(read_rows(history.storage, history.study_id)) == TRIALS  # the fast path is taken, not its fallback
    fast, slow = load_points(study), load_points(study, fast=False)
    assert len(fast) == TRIALS and fast == slow
    assert {p.state for p in fast} >= {"complete", "failed"} and all(p.cell for p in fast)


def test_report_is_one_self_contained_file(finished_run, tmp_path):
    path = build_report(finished_run.path, tmp_path / "report.html", top=5)
    html = path.read_text()
    # nothing loaded from elsewhere (plotly.js's own text mentions URLs for map tiles, which no figure uses; the
    # browser test checks that opening the report makes no request at all)
    assert not re.search(r"<script[^>]+src=", html) and not re.search(r"<link[^>]+href=", html)
    assert "plotly.js v" in html
    for figure_id in FIGURE_TITLES:
        assert f'id="{figure_id}"' in html
    best = finished_run.history().best(5)
    rows = re.findall(r'<tr class="cell-row">.*?</tr>', html, re.S)
    assert len(rows) == 5
    for record, row in zip(best, rows):
        assert record.hash in row and f"{record.value:.4f}" in row and "data:image/svg+xml;base64," in row


def test_cli_report_and_one_line_errors(finished_run, tmp_path, capsys):
    output = tmp_path / "r.html"
    assert main(["report", str(finished_run.path), "-o", str(output)]) == 0
    assert output.stat().st_size > 1_000_000  # plotly.js inlined
    capsys.readouterr()

    def one_line_error(argv, expected):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("attnas: error:") and expected in err, err

    for command in (["dashboard"], ["report", "-o", str(tmp_path / "x.html")]):
        one_line_error(command[:1] + [str(tmp_path / "missing")] + command[1:], "no such run")
        corrupt = tmp_path / "corrupt"
        corrupt.mkdir(exist_ok=True)
        (corrupt / "run.json").write_text("{not json")
        one_line_error(command[:1] + [str(corrupt)] + command[1:], "unreadable run file")
        bad_db = tmp_path / "bad_db"
        bad_db.mkdir(exist_ok=True)
        (bad_db / "run.json").write_text(json.dumps({"storage": f"sqlite:///{bad_db}/history.db"}))
        one_line_error(command[:1] + [str(bad_db)] + command[1:], "history")  # history.db is missing
        (bad_db / "history.db").write_bytes(b"this is not a database" * 100)
        one_line_error(command[:1] + [str(bad_db)] + command[1:], "cannot open the history storage")
    one_line_error(["report", str(finished_run.path), "-o", str(tmp_path / "no" / "dir" / "r.html")],
                   "cannot write the report")


def start_cli_dashboard(run_path, *extra):
    process = subprocess.Popen([sys.executable, "-m", "attnas.experiments.cli", "dashboard", str(run_path),
                                "--port", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r"http://(\[?[0-9a-f.:]+\]?):(\d+)/dashboard/studies/\d+", line)
    if not match:
        process.kill()
        raise AssertionError(f"no URL from `attnas dashboard`: {line!r} {process.stderr.read()[-2000:]}")
    return process, match.group(1), int(match.group(2))


@pytest.mark.slow
def test_cli_dashboard_listens_on_loopback_unless_told(finished_run):
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("needs /proc/net/tcp to read the listening sockets")
    for extra, expected_host, expected in (((), "127.0.0.1", {"0100007F"}),
                                           (("--host", "0.0.0.0"), "0.0.0.0", {"00000000"})):
        process, host, port = start_cli_dashboard(finished_run.path, *extra)
        try:
            assert host == expected_host
            deadline = time.time() + 30
            while not listening(port) and time.time() < deadline:
                time.sleep(0.1)
            assert listening(port) == expected
            kind, _ = get(f"http://127.0.0.1:{port}/api/meta")
            assert kind.startswith("application/json")
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_the_history_counts_are_what_the_figures_show(finished_run):
    """The synthetic run is a fair stand-in: trials in every state, two controllers, references recorded."""
    records = finished_run.history().trials()
    assert len(records) == TRIALS and {r.attrs["controller"] for r in records} == {"random", "evolution"}
    assert sum(r.state == COMPLETE for r in records) >= TRIALS // 2
    assert set(finished_run.history().metadata["references"]) == {"none", "non_local", "double_attention"}
