"""Naming a run on the command line (issue 18): `make search` names runs quickstart-DATE-TIME, so every command that
takes RUN (status, resume, export, report, dashboard, references) also takes the start of one run's name, or
--latest, through one resolver (experiments.run_folder.find_run). Real run folders, through `attnas`."""
import json
import re
import shlex
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from attnas.experiments.cli import EPILOG, build_parser, main
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.history import History, sqlite_url
from attnas.experiments.run_folder import create_run, find_run
from attnas.search_space.errors import AttnasError
from tests.experiments.tiny import TINY

EARLY, LATE = "quickstart-20261203-101500", "quickstart-20261203-111500"
RUN_COMMANDS = ("status", "resume", "export", "report", "dashboard", "references")
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three finished runs under runs/: two from `make search` with a common prefix, and `zebra`, which sorts last
    by name but started first (copies of one synthetic run: a copied run folder is a working run)."""
    made = write_synthetic_history(tmp_path_factory.mktemp("made"), name="made", trials=5, references=False)
    recorded = json.loads((made.path / "run.json").read_text())
    assert datetime.fromisoformat(recorded["started"]) > datetime(2026, 1, 1, tzinfo=timezone.utc)  # recorded
    root = tmp_path_factory.mktemp("project") / "runs"
    start = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
    for index, name in enumerate(("zebra", EARLY, LATE)):
        shutil.copytree(made.path, root / name)
        (root / name / "run.json").write_text(json.dumps({**recorded, "started": (start + timedelta(hours=index))
                                                          .isoformat()}))
        # an experiment whose budget is spent, so that `resume` stops at once and says so
        (root / name / "experiment.yaml").write_text(yaml.safe_dump({**TINY, "name": name, "budget": {"trials": 2}}))
    return root


@pytest.fixture
def in_project(runs, monkeypatch):
    monkeypatch.chdir(runs.parent)  # RUN names a run under ./runs
    return runs


def status_json(capsys, *args):
    assert main(["status", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_unique_prefix_names_its_run(in_project, capsys):
    assert status_json(capsys, "quickstart-20261203-10")["run"] == EARLY
    assert status_json(capsys, "quickstart-20261203-11")["run"] == LATE
    assert status_json(capsys, "zeb")["run"] == "zebra"
    assert status_json(capsys, EARLY)["run"] == EARLY            # a whole name is that run


def test_latest_is_the_run_that_started_last_not_the_last_by_name(in_project, capsys):
    status = status_json(capsys, "--latest")
    assert status["run"] == LATE
    assert status["counts"]["complete"] + status["counts"]["pruned"] + status["counts"]["failed"] == 5


def test_an_ambiguous_prefix_is_one_line_listing_the_candidates_exit_2(in_project, capsys):
    assert main(["status", "quickstart"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"attnas: error: quickstart: 2 runs start with that name ({EARLY}, {LATE}); give more "
                            "of it, or --latest\n")


@pytest.mark.parametrize("args, message", [
    (["status", "nosuch"], "nosuch: no such run (looked for nosuch and runs/nosuch), and no run's name starts with "
                           "'nosuch'"),
    (["status", "runs/quick"], "runs/quick: no such run"),          # a path is a folder, never a prefix
    (["status"], "one of the arguments RUN --latest is required"),
    (["status", LATE, "--latest"], "argument --latest: not allowed with argument RUN"),
])
def test_wrong_names_are_one_line_exit_2(in_project, capsys, args, message):
    try:
        code = main(args)
    except SystemExit as exit_:     # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_latest_with_no_runs_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--latest"]) == 2
    err = capsys.readouterr().err
    assert err == f"attnas: error: --latest: no runs under {tmp_path / 'runs'} yet (start one with `attnas search " \
                  "CONFIG`)\n"


@pytest.mark.slow
def test_export_report_resume_and_dashboard_take_a_prefix_or_latest(in_project, tmp_path, capsys, monkeypatch):
    assert main(["export", "--latest", "-o", str(tmp_path / "latest.yaml")]) == 0
    assert f"of run '{LATE}'" in (tmp_path / "latest.yaml").read_text().splitlines()[0]
    assert main(["export", "quickstart-20261203-10", "-o", str(tmp_path / "early.yaml")]) == 0
    assert f"of run '{EARLY}'" in (tmp_path / "early.yaml").read_text().splitlines()[0]

    assert main(["report", "zeb", "-o", str(tmp_path / "report.html")]) == 0
    assert "zebra" in (tmp_path / "report.html").read_text()

    capsys.readouterr()
    assert main(["resume", "--latest"]) == 0            # its budget is spent: it stops before starting Ray
    assert f"run '{LATE}': its budget of 2 trials is spent (5 finished)" in capsys.readouterr().err

    from attnas.experiments.dashboard.server import DashboardServer

    def stop(server):
        raise KeyboardInterrupt

    monkeypatch.setattr(DashboardServer, "serve_forever", stop)
    assert main(["dashboard", "quickstart-20261203-10", "--port", "0"]) == 0
    assert f"optuna-dashboard for run '{EARLY}'" in capsys.readouterr().out
    assert main(["dashboard", "quickstart"]) == 2
    assert "2 runs start with that name" in capsys.readouterr().err


def test_in_a_shared_database_latest_is_the_run_created_last_and_a_prefix_names_one(tmp_path, capsys):
    storage = sqlite_url(str(tmp_path / "shared.db"))
    for name in ("nightly-b", "nightly-a", "weekly"):
        History(storage, study=name).set_metadata(name=name)
    assert status_json(capsys, "--storage", storage, "--latest")["run"] == "weekly"
    assert status_json(capsys, "--storage", storage, "week")["run"] == "weekly"
    assert main(["status", "--storage", storage, "nightly"]) == 2
    assert "nightly: 2 runs start with that name (nightly-a, nightly-b)" in capsys.readouterr().err


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_help_of_every_command_taking_a_run_documents_prefix_and_latest(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--latest" in out and "the run that started last" in out and "the start of one run's name" in out


def make_search_names(times):
    """The run names `make search` gives at `times`, read from the Makefile's `--name PREFIX-$$(date +FORMAT)`."""
    makefile = (REPOSITORY / "Makefile").read_text()
    prefix, date_format = re.search(r"--name (\S+)-\$\$\(date \+([^)]+)\)", makefile).groups()
    return [f"{prefix}-{time.strftime(date_format)}" for time in times]


def example_commands():
    """The `attnas COMMAND RUN ...` examples of the README's shell blocks and of `attnas --help`, for commands that
    take a run (leaving out paths of the search study's own folders)."""
    readme = (REPOSITORY / "README.md").read_text()
    lines = [line for block in re.findall(r"```sh\n(.*?)```", readme, re.S) for line in block.splitlines()]
    lines += EPILOG.splitlines()
    commands = [shlex.split(line.split("#")[0]) for line in lines if line.strip().startswith("attnas ")]
    return [words[1:] for words in commands if words[1] in RUN_COMMANDS and not any("/" in w for w in words[2:3])]


def test_readme_and_help_examples_find_the_runs_make_search_makes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = make_search_names([datetime(2026, 12, 3, 9, 30)])[0]
    create_run(first, root="runs").history(create=True)
    commands = example_commands()
    assert {words[0] for words in commands} == set(RUN_COMMANDS) - {"resume"}, commands
    assert any("--latest" in words for words in commands) and any(words[1] == "quickstart" for words in commands)
    parser = build_parser()
    for words in commands:    # one run so far: a prefix and --latest both name it
        args = parser.parse_args(words)
        assert find_run(args.run_dir, latest=args.latest).name == first, words
    second = make_search_names([datetime(2026, 12, 3, 11, 0)])[0]
    create_run(second, root="runs").history(create=True)
    for words in commands:    # a second `make search`: --latest is the new run, and a shared start is ambiguous
        args = parser.parse_args(words)
        if args.latest:
            assert find_run(latest=True).name == second, words
        else:
            with pytest.raises(AttnasError, match=re.escape(f"{args.run_dir}: 2 runs start with that name ({first}, "
                                                            f"{second})")):
                find_run(args.run_dir)
