"""The search progress display, driven by a scripted sequence of Tune events on a fake clock: the live table's
content and fixed columns on a recorded rich console, the plain lines without a terminal, and the steady ETA."""
from types import SimpleNamespace

import pytest
from rich.console import Console

from attnas.experiments.progress import SearchProgress, SteadyEta
from attnas.experiments.wording import plural


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeSpace:
    def hash(self, cell):
        return f"hash{cell:010d}"


def fake_searcher(epochs=3):
    return SimpleNamespace(numbers={}, cells={}, errors={}, finished=set(), epochs=epochs, metric="accuracy",
                           space=FakeSpace())


def trial(searcher, trial_id, number, *, status="RUNNING", result=None):
    searcher.numbers[trial_id] = number
    searcher.cells[trial_id] = number
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result or {}, error_file=None)


def progress_on(console, *, total=6, concurrency=2, live=True, plan=None):
    clock = Clock()
    searcher = fake_searcher()
    reporter = SearchProgress(history=None, searcher=searcher, total=total, deadline=None, concurrency=concurrency,
                              plan=plan, enabled=live, console=console, clock=clock)
    return reporter, searcher, clock


def test_live_table_lists_running_trials_under_a_bar_with_counts_best_and_eta():
    console = Console(record=True, width=100, force_terminal=True, color_system=None)
    reporter, searcher, clock = progress_on(console)
    first, second = trial(searcher, "a", 0), trial(searcher, "b", 1)
    reporter.on_trial_start(0, [], first)
    clock.now += 5
    reporter.on_trial_start(0, [], second)
    clock.now += 10
    reporter.on_trial_result(0, [], first, result={"epoch": 2, "accuracy": 0.41, "node": "10.0.0.7/abcd1234"})
    first.last_result = {"epoch": 3, "accuracy": 0.52}
    clock.now += 5
    reporter.on_trial_complete(0, [], first)
    reporter.on_trial_result(0, [], second, result={"epoch": 1, "accuracy": 0.30, "node": "10.0.0.8/ffff0000"})
    console.print(reporter)
    text = console.export_text()
    lines = text.splitlines()
    assert "1/6" in lines[0] and "left ~" in lines[0] and "elapsed 20s" in lines[0]
    assert "1 running, 1 complete, 0 pruned, 0 failed; best 0.5200 (hash0000000000)" in lines[1]
    assert lines[2].split() == ["trial", "cell", "node", "epoch", "accuracy", "elapsed"]
    assert lines[3].split() == ["1", "hash0000000001", "10.0.0.8/ffff0000", "1/3", "0.3000", "15s"]
    assert len(lines) == 4  # the finished trial left the table
    # the first trial took 20 s; 5 trials left, 2 at once: 50 s left
    assert "left ~50s" in lines[0]


def test_columns_do_not_shift_as_values_change():
    def header_and_row(epoch, metric, elapsed):
        console = Console(record=True, width=100, force_terminal=True, color_system=None)
        reporter, searcher, clock = progress_on(console)
        running = trial(searcher, "a", 7)
        reporter.on_trial_start(0, [], running)
        clock.now += elapsed
        reporter.on_trial_result(0, [], running, result={"epoch": epoch, "accuracy": metric, "node": "n"})
        console.print(reporter)
        return console.export_text().splitlines()[2:4]

    early, late = header_and_row(1, 0.1, 3), header_and_row(3, 0.98765, 4000)
    assert early[0] == late[0]
    for word in ("epoch", "accuracy", "elapsed"):  # right-aligned columns end at the same place
        end = early[0].index(word) + len(word)
        assert early[1][end - 1] != " " and late[1][end - 1] != " "


def test_without_a_terminal_prints_the_plan_the_warm_start_and_one_line_per_trial(capsys):
    console = Console(record=True, width=100)
    reporter, searcher, clock = progress_on(console, live=False, total=3,
                                            plan="search 'x': controller random, budget 3 trials")
    with reporter:
        first = trial(searcher, "a", 0)
        reporter.on_trial_start(0, [], first)
        clock.now += 25
        reporter.on_trial_result(0, [], first, result={"epoch": 1, "accuracy": 0.2, "warm_start_s": 18.4})
        reporter.on_trial_result(0, [], first, result={"epoch": 2, "accuracy": 0.3, "warm_start_s": 18.4})
        first.last_result = {"epoch": 3, "accuracy": 0.5, "warm_start_s": 18.4}
        clock.now += 5
        reporter.on_trial_complete(0, [], first)
        reporter.on_trial_complete(0, [], first)  # Tune may report twice: counted once
        failed = trial(searcher, "b", 1, status="ERROR", result={"epoch": 1})
        reporter.on_trial_start(0, [], failed)
        reporter.on_trial_error(0, [], failed)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "search 'x': controller random, budget 3 trials"
    assert lines[1].startswith("warm start: trial 0 pretrained the backbone alone in 18s")
    assert lines[2].startswith("trial 0 complete accuracy 0.5000  [1/3, best 0.5000 (hash0000000000), 30s elapsed")
    assert lines[3].startswith("trial 1 failed accuracy -  [2/3")
    assert len(lines) == 4
    assert searcher.errors["b"] == "the trial's worker raised or died"


def test_eta_excludes_the_warm_start_and_counts_down_steadily():
    eta = SteadyEta(parallel=2)
    now, left = 0.0, 20
    seen = []
    # 20 trials of 10 s each, 2 at once; the first one also paid a 40 s warm start (left out by the caller)
    for finished in range(20):
        now += 5.0
        left -= 1
        eta.trial_finished(10.0, left=left, now=now)
        seen.append(eta.seconds_left(now))
    truth = [5.0 * left for left in range(19, -1, -1)]
    assert all(abs(s - t) <= 0.15 * t + 1e-9 for s, t in zip(seen, truth))
    assert seen == sorted(seen, reverse=True)  # never jumps up on a steady search


def test_eta_is_smoothed_over_noisy_trials():
    durations = [4.0, 16.0, 4.0, 16.0, 4.0, 16.0, 4.0, 16.0]
    eta, naive = SteadyEta(parallel=1), []
    now, shown = 0.0, []
    for index, duration in enumerate(durations):
        now += duration
        left = 20 - index - 1
        eta.trial_finished(duration, left=left, now=now)
        shown.append(eta.seconds_left(now))
        naive.append(duration * left)  # the last trial's duration alone: 76, 288, 68, ...
    # from the second trial on (the first one, which started the worker, is dropped from the estimate then)
    steps = [abs(b - a) for a, b in zip(shown[1:], shown[2:])]
    naive_steps = [abs(b - a) for a, b in zip(naive[1:], naive[2:])]
    assert max(steps) < 0.35 * max(naive_steps)
    assert eta.seconds_left(now + 1e6) == 0.0
    assert SteadyEta(parallel=1).seconds_left(0.0) is None


def test_one_slow_start_up_does_not_linger_in_the_eta():
    eta = SteadyEta(parallel=1)
    now, left = 0.0, 30
    for duration in (30.0, 5.0, 5.0, 5.0):  # the first trial also started the worker
        now += duration
        left -= 1
        eta.trial_finished(duration, left=left, now=now)
    assert eta.typical_duration == 5.0
    assert eta.seconds_left(now) < 0.5 * 30.0 * left  # already far below the first estimate...
    previous = eta.seconds_left(now)
    for _ in range(8):
        now += 5.0
        left -= 1
        eta.trial_finished(5.0, left=left, now=now)
        assert eta.seconds_left(now) <= previous  # ...and only coming down from there
        previous = eta.seconds_left(now)
    assert abs(previous - 5.0 * left) <= 0.1 * 5.0 * left


@pytest.mark.parametrize("count, text", [(1, "1 trial"), (2, "2 trials"), (0, "0 trials")])
def test_counts_agree_in_number(count, text):
    assert plural(count, "trial") == text


@pytest.mark.slow
def test_cli_search_without_a_terminal_says_its_plan_warm_start_and_each_trial(tmp_path, capsys, monkeypatch,
                                                                               ray_local):
    import attnas.experiments.progress as progress
    from attnas.experiments.cli import main
    from attnas.experiments.run_folder import open_run
    from tests.experiments.tiny import TINY, write_tiny

    monkeypatch.setattr(progress, "WARM_START_WORTH_SAYING_S", 0.0)  # however fast the tiny backbone trains
    evaluator = {**TINY["evaluator"], "pretrain_epochs": 1,
                 "data": {**TINY["evaluator"]["data"], "cache_dir": str(tmp_path / "cache")}}  # a cold cache
    config = write_tiny(tmp_path, budget={"trials": 3}, concurrency=1, evaluator=evaluator)
    assert main(["search", config, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    lines = capsys.readouterr().err.splitlines()
    run = open_run(tmp_path / "runs" / "tiny")
    assert lines[0] == f"search 'tiny': controller random, budget 3 trials, 2 epochs a trial, 1 trial at once; " \
                       f"run folder {run.path}"
    warm = [line for line in lines if line.startswith("warm start:")]
    assert len(warm) == 1 and warm[0].startswith("warm start: trial 0 pretrained the backbone alone in ")
    finished = [line for line in lines if line.startswith("trial ")]
    records = run.history().trials()
    assert [line.split()[1:3] for line in finished] == [[str(r.number), r.state] for r in records]
    assert [f"[{i}/3," in line for i, line in enumerate(finished, start=1)] == [True] * 3
    # the study's params are the cells' named choices
    for trial in run.history().study.trials:
        cell = trial.user_attrs["cell"]
        assert trial.params["0.op"] in {node["op"] for node in cell["nodes"].values()}
