"""A search's record is complete and every run resumes (issue 13), tested the way a user runs attnas: the CLI on
real run folders (tiny proxy experiments), then status, export, resume, a moved or copied folder, a shared database,
and kill -9 at many moments."""
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from attnas.experiments.cli import main
from attnas.experiments.history import COMPLETE, FAILED, PRUNED, RUNNING, History
from attnas.experiments.run_folder import open_run
from attnas.experiments.trial_params import categorical_params
from attnas.search_space import load_space
from tests.experiments.test_dashboard_search import scalars
from tests.experiments.tiny import TINY, write_tiny

ASHA = {"scheduler": "asha", "grace_period": 1, "reduction_factor": 2}
THREE_EPOCHS = {**TINY["evaluator"], "epochs": 3}


def cli(*args: str, timeout: float = 900, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnas.experiments.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})


def ray_curves(run, metric: str) -> dict[int, dict[int, float]]:
    """{trial number: {epoch: metric}} as Ray Tune's own TensorBoard files of the run hold them (Tune's result.json
    and progress.csv are not written: `lean_tune`)."""
    curves: dict[int, dict[int, float]] = {}
    for path in run.ray_dir.glob("*/trial-*/events.out.*"):
        number = int(path.parent.name.split("-")[1])
        for step, value in scalars(str(path), f"ray/tune/{metric}"):  # step: Tune's iteration, one per epoch
            curves.setdefault(number, {})[step] = value
    return curves


def states(run) -> dict[str, int]:
    records = open_run(run).history().trials()
    return {s: sum(1 for r in records if r.state == s) for s in (COMPLETE, PRUNED, FAILED, RUNNING)}


# ------------------------------------------------------------------------------------- 1. full curves
@pytest.fixture(scope="module")
def top5_search(tmp_path_factory):
    """`attnas search` of 4 three-epoch trials under ASHA ranked by top5 (a metric other than the default, so the
    curves are shown to follow the objective): searched once for the curve test and the top5 test of this module,
    which only read it. The run folder and what the CLI returned."""
    folder = tmp_path_factory.mktemp("top5")
    config = write_tiny(folder, budget={"trials": 4}, evaluator=THREE_EPOCHS, early_stopping=ASHA,
                        objective={"metric": "top5"})
    result = cli("search", config, "--runs-dir", str(folder / "runs"), "--quiet")
    return SimpleNamespace(run_path=folder / "runs" / "tiny", result=result)


@pytest.mark.slow
def test_every_trial_has_its_full_curve_and_value_equal_to_rays_tensorboard_curve(top5_search):
    assert top5_search.result.returncode == 0, top5_search.result.stderr[-2000:]
    run = open_run(top5_search.run_path)
    records = run.history().trials()
    tune_curves = ray_curves(run, "top5")
    assert len(records) == 4 and {r.state for r in records} <= {COMPLETE, PRUNED}
    for record in records:
        expected = [tune_curves[record.number][epoch] for epoch in sorted(tune_curves[record.number])]
        assert record.curve == pytest.approx(expected), record.number
        assert len(record.curve) == record.attrs["epochs_done"]
        assert record.value == pytest.approx(record.curve[-1])  # a pruned trial's value: its last metric
        if record.state == COMPLETE:
            assert len(record.curve) == 3 and record.values["top5"] == pytest.approx(record.curve[-1])


# ---------------------------------------------------------------------------------- 2. one objective
@pytest.mark.parametrize("objective, message", [
    ({"metric": "acc"}, "objective.metric: 'acc' is not a metric a trial reports every epoch (did you mean "
                        "'accuracy'?)"),
    ({"metric": "loss"}, "objective.metric: 'loss' is not a metric a trial reports every epoch"),
    ({"budget": {"latency": 5}}, "objective.budget.latency: 'latency' is not a cost a trial reports (did you mean "
                                 "'latency_ms'?)"),
    ({"tradeoff": {"cost": "flops", "target": 1e6, "weight": -0.07}}, "objective.tradeoff.cost: 'flops'"),
])
def test_the_objective_is_checked_against_what_a_trial_reports(tmp_path, capsys, objective, message):
    config = write_tiny(tmp_path, objective=objective)
    assert main(["search", config, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and config in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_a_top5_objective_ranks_the_scheduler_history_status_and_export(top5_search, tmp_path):
    result = top5_search.result
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best cell" in result.stdout and ": top5 " in result.stdout
    run = open_run(top5_search.run_path)
    history = run.history()
    records = history.trials()
    top5 = ray_curves(run, "top5")
    for record in records:
        assert record.curve == pytest.approx([top5[record.number][e] for e in sorted(top5[record.number])])
        if record.state == COMPLETE:
            assert record.value == pytest.approx(record.values["top5"])
    complete = [r for r in records if r.state == COMPLETE]
    best = min(complete, key=lambda r: (-r.values["top5"], r.number))
    assert history.best(1)[0].number == best.number
    assert history.study.metric_names == ["top5"]  # what the dashboard labels the value with
    status = cli("status", str(run.path))
    assert "top5" in status.stdout.splitlines()[2] or "top5" in status.stdout
    exported = cli("export", str(run.path), "--best", "-o", str(tmp_path / "best.yaml"))
    assert exported.returncode == 0, exported.stderr
    assert f"trial {best.number} " in (tmp_path / "best.yaml").read_text()


# ------------------------------------------------------------------------------ 3. nothing left running
@pytest.mark.slow
def test_a_failing_record_write_fails_that_trial_and_the_search_goes_on(tmp_path, ray_local, monkeypatch, capsys):
    calls = []
    finish = History.finish

    def flaky_finish(self, number, **kwargs):
        calls.append((number, kwargs.get("state")))
        if len(calls) == 1:
            raise RuntimeError("disk I/O error")
        return finish(self, number, **kwargs)

    monkeypatch.setattr(History, "finish", flaky_finish)
    config = write_tiny(tmp_path, budget={"trials": 3}, concurrency=1)
    assert main(["search", config, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    records = open_run(tmp_path / "runs" / "tiny").history().trials()
    assert len(records) == 3 and not [r for r in records if r.state == RUNNING]
    failed = [r for r in records if r.state == FAILED]
    assert len(failed) == 1 and "recording the trial failed: RuntimeError: disk I/O error" in failed[0].reason
    assert sum(r.state == COMPLETE for r in records) == 2


@pytest.mark.slow
def test_ctrl_c_leaves_nothing_running_and_resume_meets_the_budget(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) once a trial is complete and another running:
    the search ends with no trial running, says how to continue, and `resume` trains the interrupted one again."""
    config = write_tiny(tmp_path, budget={"trials": 3}, concurrency=2)
    run_dir = tmp_path / "runs" / "tiny"
    search = subprocess.Popen([sys.executable, "-m", "attnas.experiments.cli", "search", config, "--runs-dir",
                               str(tmp_path / "runs"), "--quiet"], start_new_session=True, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 600
    try:
        while time.time() < deadline and search.poll() is None:
            time.sleep(0.5)
            try:
                records = open_run(run_dir).history().trials()
            except Exception:  # not created yet, or mid-write
                continue
            if any(r.state == COMPLETE for r in records) and any(r.state == RUNNING for r in records):
                os.killpg(search.pid, signal.SIGINT)
                break
        _, err = search.communicate(timeout=300)
    finally:
        if search.poll() is None:
            os.killpg(search.pid, signal.SIGKILL)
    before = open_run(run_dir).history().trials()
    assert not [r for r in before if r.state == RUNNING], [(r.number, r.state) for r in before]
    interrupted = [r for r in before if r.attrs.get("interrupted")]
    assert interrupted and all("attnas resume" in r.reason for r in interrupted)
    assert search.returncode == 130 and "trials unfinished" in err
    resumed = cli("resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = open_run(run_dir).history().trials()
    counted = [r for r in after if not r.attrs.get("interrupted")]
    assert len(counted) == 3 and all(r.state in (COMPLETE, PRUNED) for r in counted)
    assert {r.attrs.get("rerun_of") for r in counted} >= {r.number for r in interrupted}
    assert not [r for r in after if r.state == RUNNING]
    assert all(len(r.curve) == 2 for r in counted if r.state == COMPLETE)


# --------------------------------------------------------------------- 4. trials that can never start
@pytest.mark.parametrize("resources, field", [
    ({"gpus": 64}, "resources.gpus"), ({"cpus": 100000}, "resources.cpus"), ({"cpus": float("inf")}, "resources.cpus"),
    ({"gpus": 1.0e-300}, "resources.gpus"), ({"gpus": float("nan")}, "resources.gpus"),
])
def test_dry_run_refuses_resources_no_node_offers(tmp_path, capsys, resources, field):
    config = write_tiny(tmp_path, resources=resources)
    assert main(["search", config, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_search_stops_at_once_when_no_node_offers_a_trials_resources(tmp_path, ray_local, capsys):
    config = write_tiny(tmp_path, resources={"cpus": 3})  # the test cluster has 2 CPUs
    started = time.time()
    assert main(["search", config, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "resources.cpus" in err and "no node of the Ray cluster" in err and len(err.splitlines()) == 1
    assert time.time() - started < 120
    assert open_run(tmp_path / "runs" / "tiny").history().trials() == []


# ----------------------------------------------------------------- 5, 6. self-contained runs, overrides
@pytest.fixture(scope="module")
def relocated(finished_tiny_run, tmp_path_factory):
    """The finished run (2 trials, conftest.py) moved (mv: its first place gone), a copy of the moved folder (cp -a),
    and that copy resumed twice: as it is (its budget of 2 trials spent), then with `--trials 3`. One resume with
    training serves the tests of the moved folder and of the overrides. The copy's name has braces, which Optuna
    would read as a placeholder of its storage URL template."""
    folder = tmp_path_factory.mktemp("relocated")
    shutil.copytree(finished_tiny_run, folder / "original", symlinks=True)
    (folder / "elsewhere").mkdir()
    moved = folder / "elsewhere" / "moved"
    shutil.move(folder / "original", moved)
    copy = folder / "copy{1}"
    shutil.copytree(moved, copy, symlinks=True)  # cp -a
    budget_before = yaml.safe_load((copy / "experiment.yaml").read_text())["budget"]["trials"]
    spent = cli("resume", str(copy), "--quiet")
    trials_after_spent = len(open_run(copy).history().trials())
    extended = cli("resume", str(copy), "--trials", "3", "--quiet")
    return SimpleNamespace(moved=moved, copy=copy, budget_before=budget_before, spent=spent,
                           trials_after_spent=trials_after_spent, extended=extended)


@pytest.mark.slow
def test_a_moved_and_a_copied_run_folder_work_independently(relocated, tmp_path):
    moved, copy = relocated.moved, relocated.copy
    status = cli("status", str(moved))
    assert status.returncode == 0 and "2 trials" in status.stdout, status.stderr
    exported = cli("export", str(moved), "--best", "-o", str(tmp_path / "cell.py"))
    assert exported.returncode == 0 and (tmp_path / "cell.pt").is_file(), exported.stderr
    assert relocated.extended.returncode == 0, relocated.extended.stderr[-2000:]  # `resume --trials 3` of the copy
    assert len(open_run(copy).history().trials()) == 3
    assert len(open_run(moved).history().trials()) == 2, "the copy wrote into the original's history"
    assert "history.db" not in (copy / "run.json").read_text() or "/" not in (copy / "run.json").read_text()
    for record in open_run(copy).history().trials():
        assert not Path(record.attrs["checkpoint"]).is_absolute()
    bare = tmp_path / "bare-run"
    shutil.copytree(copy, bare, symlinks=True)  # the module's copy keeps its weights for the other test
    shutil.rmtree(bare / "ray")  # weights gone: the export says so
    exported = cli("export", str(bare), "--best", "-o", str(tmp_path / "bare.py"))
    assert exported.returncode == 0 and "no trained weights" in exported.stderr
    assert not (tmp_path / "bare.pt").exists()


@pytest.mark.slow
def test_command_line_overrides_are_part_of_the_run(relocated):
    assert relocated.budget_before == 2
    spent = relocated.spent  # `resume` with the budget of the run's own experiment.yaml
    assert spent.returncode == 0 and "budget of 2 trials is spent" in spent.stderr and "--trials" in spent.stderr
    assert relocated.trials_after_spent == 2
    extended = relocated.extended  # `resume --trials 3`
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert len(open_run(relocated.copy).history().trials()) == 3
    assert yaml.safe_load((relocated.copy / "experiment.yaml").read_text())["budget"]["trials"] == 3


# ---------------------------------------------------------------------- 7. many runs in one database
@pytest.mark.slow
def test_concurrent_searches_share_one_postgresql_database(tmp_path, postgres_url, capsys, monkeypatch):
    config = write_tiny(tmp_path, budget={"trials": 2}, concurrency=1)
    runs = tmp_path / "runs"
    searches = [subprocess.Popen([sys.executable, "-m", "attnas.experiments.cli", "search", config, "--name", name,
                                  "--runs-dir", str(runs), "--storage", postgres_url, "--quiet"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"}) for name in ("first", "second")]
    for search in searches:
        _, err = search.communicate(timeout=900)
        assert search.returncode == 0, err[-2000:]
    for name in ("first", "second"):
        records = open_run(runs / name).history().trials()
        assert len(records) == 2 and all(r.state == COMPLETE for r in records)
    # what follows reads the database and starts no search: the CLI in this process
    capsys.readouterr()
    assert main(["list", "--storage", postgres_url]) == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert len(lines) == 2 and lines[0].startswith("first: 2/2 trials") and lines[1].startswith("second: 2/2")
    main(["list", str(runs)])
    assert sorted(capsys.readouterr().out.splitlines()) == lines
    assert main(["resume", str(runs / "first"), "--quiet"]) == 0
    assert "spent" in capsys.readouterr().err
    elsewhere = tmp_path / "another-machine"  # no run folders here: runs are addressed by name in the database
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["status", "second", "--storage", postgres_url]) == 0
    assert "2 trials" in capsys.readouterr().out
    assert main(["resume", "second", "--storage", postgres_url, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "budget of 2 trials is spent" in err, err
    assert (elsewhere / "runs" / "second" / "experiment.yaml").is_file()
    assert main(["status", "third", "--storage", postgres_url]) == 2
    assert "no run of that name" in capsys.readouterr().err


# --------------------------------------------------------------------------- 8. kill -9, any moment
def _sample_cells(count: int, seed: int):
    space = load_space("small")
    rng = __import__("numpy").random.default_rng(seed)
    cells = []
    while len(cells) < count:
        cell = space.sample(rng)
        if cell.hash not in {c.hash for c in cells}:
            cells.append(cell)
    return space, cells


@pytest.mark.slow
def test_resume_repairs_a_kill_at_each_history_write(finished_tiny_run, tmp_path):
    """The history as a kill -9 leaves it at each of its writes (a start enqueued but not picked up, a start from
    before starts were one write, a close recorded but not told) resumes to exactly its budget."""
    run = open_run(shutil.copytree(finished_tiny_run, tmp_path / "tiny", symlinks=True))  # 2 trials done
    history = run.history()
    done = history.trials()
    assert len(done) == 2
    space, (enqueued, closed) = _sample_cells(2, seed=99)
    names, cards, choices = space.vector_names(), space.vector_cardinalities(), space.vector_choices()
    history.study.ask()  # a trial of an older driver, killed between its ask and its cell
    params, _ = categorical_params(names, [int(v) for v in space.encode_vector(enqueued)], cards, choices)
    history.study.enqueue_trial(params, user_attrs={"cell": enqueued.to_dict(), "hash": enqueued.hash,
                                                    "controller": "random"})
    number = history.start(cell=closed.to_dict(), cell_hash=closed.hash, controller="random",
                           encoding=[int(v) for v in space.encode_vector(closed)], encoding_names=names,
                           cardinalities=cards, choices=choices)
    history.report(number, 1, 0.4)
    history.report(number, 2, 0.5)
    history.set_attrs(number, values={"accuracy": 0.5}, closing={"state": COMPLETE, "value": 0.5})
    resumed = cli("resume", str(run.path), "--trials", "4", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    records = {r.number: r for r in open_run(run.path).history().trials()}
    assert not [r for r in records.values() if r.state == RUNNING]
    for record in done:
        assert (records[record.number].value, records[record.number].hash) == (record.value, record.hash)
    assert records[number].state == COMPLETE and records[number].value == 0.5, "a closed trial was re-run"
    assert records[number].curve == [0.4, 0.5]
    half = [r for r in records.values() if r.attrs.get("half_written")]
    assert len(half) == 1 and half[0].state == FAILED
    counted = [r for r in records.values() if not r.attrs.get("half_written")]
    assert len(counted) == 4 and all(r.state == COMPLETE for r in counted)
    assert enqueued.hash in {r.hash for r in counted}
    assert len({r.hash for r in counted}) == 4


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_and_repeats_nothing(tmp_path):
    """The driver's process group is killed at random moments (seeded) over a 6-trial search, 2 at a time, and
    over its resumes; each resume keeps every completed trial as it was and trains no completed cell again, and
    the last one meets the budget exactly."""
    rng = random.Random(13)
    config = write_tiny(tmp_path, name="killed", budget={"trials": 6}, concurrency=2, evaluator=THREE_EPOCHS)
    runs = tmp_path / "runs"
    run_dir = runs / "killed"
    command = ["search", config, "--runs-dir", str(runs), "--quiet"]
    kept: dict[int, tuple] = {}
    kills = 0
    for attempt in range(6):
        delay = rng.uniform(4.0, 30.0) if attempt < 4 else None
        process = subprocess.Popen([sys.executable, "-m", "attnas.experiments.cli", *command],
                                   start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            process.wait(timeout=delay if delay is not None else 900)
            finished = True
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            finished, kills = False, kills + 1
        records = open_run(run_dir).history().trials() if (run_dir / "run.json").exists() else []
        for record in records:
            if record.number in kept:
                assert (record.state, record.hash, record.value) == kept[record.number], "a completed trial changed"
            elif record.state in (COMPLETE, PRUNED):
                kept[record.number] = (record.state, record.hash, record.value)
        complete_hashes = [r.hash for r in records if r.state in (COMPLETE, PRUNED)]
        assert len(complete_hashes) == len(set(complete_hashes)), "a completed cell was trained again"
        if finished:
            assert process.returncode == 0, process.stderr.read()[-2000:]
            break
        if (run_dir / "run.json").exists():
            command = ["resume", str(run_dir), "--quiet"]
        time.sleep(1)
    else:
        pytest.fail("the search never finished")
    records = open_run(run_dir).history().trials()
    counted = [r for r in records if not r.attrs.get("interrupted") and not r.attrs.get("half_written")]
    assert len(counted) == 6 and all(r.state in (COMPLETE, PRUNED) for r in counted)
    assert not [r for r in records if r.state == RUNNING]
    assert kills >= 1


# ------------------------------------------------------------------------------------------------ also
def test_bayesian_within_its_random_start_says_it_is_random_search(tmp_path, capsys):
    config = write_tiny(tmp_path, controller={"name": "bayesian", "initial_random": 6}, budget={"trials": 6})
    assert main(["search", config, "--dry-run"]) == 0
    assert "this search is random search" in capsys.readouterr().out
    config = write_tiny(tmp_path, controller={"name": "bayesian", "initial_random": 6}, budget={"trials": 7})
    assert main(["search", config, "--dry-run"]) == 0
    assert "random search" not in capsys.readouterr().out


def test_status_names_a_reference_cell_found_by_the_search(tmp_path, capsys):
    from attnas.experiments.run_folder import create_run
    from attnas.search_space import load_zoo

    run = create_run("refs", root=tmp_path)
    history = run.history(create=True)
    for name, accuracy in (("non_local", 0.6), ("double_attention", 0.5)):
        cell = load_zoo(name)
        number = history.start(cell=cell.to_dict(), cell_hash=cell.hash, controller="random")
        history.finish(number, state=COMPLETE, values={"accuracy": accuracy})
    assert main(["status", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "= non-local" in out and "= A^2 (double" in out  # named as the dashboard names them (80 columns)


def test_a_corrupt_record_is_named_and_left_out_when_the_controller_is_rebuilt(tmp_path, caplog):
    from attnas.experiments.config import load_experiment
    from attnas.experiments.driver import build_controller
    from attnas.experiments.history import TrialRecord

    evolution = {"name": "evolution", "population_size": 2, "sample_size": 2}
    config = load_experiment(write_tiny(tmp_path, controller=evolution))
    space, (good,) = _sample_cells(1, seed=5)
    records = [TrialRecord(number=0, state=COMPLETE, cell=good.to_dict(), hash=good.hash,
                           values={"accuracy": 0.5}),
               TrialRecord(number=1, state=COMPLETE, cell={"nodes": [1, 2]}, hash="x", values={"accuracy": 0.9}),
               TrialRecord(number=2, state=RUNNING, cell={"width": "wide"}, hash="y")]
    controller, rerun = build_controller(config, space, records)
    assert rerun == [] and len(controller.state_dict().get("pending", [])) == 0
    assert "trial 1: field 'cell'" in caplog.text and "trial 2: field 'cell'" in caplog.text
