"""Dashboard figures for RESULTS.md: on a synthetic history of 5,000 trials, how long optuna-dashboard takes to load
the trial list through the real `attnas dashboard` server, and how long `attnas report` takes to build.

The history: the first `--written` trials (default 300) are written exactly the way the driver writes them (History
plus the dashboard publisher: drawing, note, figures; experiments.dashboard.synthetic); the rest are copies of them
added with Optuna's `Study.add_trials`, with the same params, user attributes, learning curves, drawing artifact and a
note each, because writing all 5,000 through History takes over an hour on this shared machine (about 0.2 s of CPU
per trial, most of it History's own commits). What the dashboard reads is the same either way.

What is timed:
- the HTTP request the dashboard UI makes for the trial list (GET /api/studies/<id>, which returns every trial with
  its params, user attributes, note and artifacts), cold (first request after the server starts) and warm;
- in headless Chromium (when /usr/bin/chromium and playwright are there): from navigating to the study's trial list
  to the list showing all N trials and the first trial's note rendered;
- the same request from optuna-dashboard as shipped, without attnas's index of notes and artifacts (speedup.py);
- `build_report` (read the history, build the figures, draw the top 10 cells, write the HTML);
- one refresh of attnas's figures by the publisher (what the driver does at most every 30 s during a search).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.results import table, write_section
from attnas.experiments.dashboard.publisher import DashboardPublisher
from attnas.experiments.dashboard.report import build_report
from attnas.experiments.dashboard.server import DashboardServer
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from attnas.experiments.run_folder import open_run

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def browser_trial_list(url: str, trials: int) -> float | None:
    """Seconds from navigating to the trial list until it shows `trials` trials and the first trial's note."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(CHROMIUM).exists():
        return None
    with tempfile.TemporaryDirectory(prefix="attnas-bench-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=BROWSER_ARGS,
                                                                headless=True)
        try:
            page = context.new_page()
            page.goto("about:blank")
            started = time.perf_counter()
            page.goto(f"{url}/trials", timeout=600_000)
            page.get_by_text(f"{trials} Trials").wait_for(timeout=600_000)
            page.get_by_text("Cell ", exact=False).first.wait_for(timeout=600_000)
            return time.perf_counter() - started
        finally:
            context.close()


def unpatched_trial_list(run) -> float:
    """Seconds for the trial-list request from optuna-dashboard as shipped (before attnas's speed-up is installed)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import optuna_dashboard

    from attnas.experiments.dashboard import speedup
    from attnas.experiments.dashboard.store import artifact_store, run_artifact_dir

    if speedup._installed:
        raise RuntimeError("measure optuna-dashboard as shipped before installing the speed-up")
    history = run.history()

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    app = optuna_dashboard.wsgi(history.storage, artifact_store=artifact_store(run_artifact_dir(run)))
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        seconds, _ = fetch(f"http://127.0.0.1:{server.server_address[1]}/api/studies/{history.study_id}")
    finally:
        server.shutdown()
        server.server_close()
    return seconds


def replicate(run, total: int) -> int:
    """Grow the run's history to `total` trials with copies of its finished trials (see the module docstring)."""
    import optuna
    from optuna_dashboard._note import get_note_from_system_attrs, note_ver_key, split_body

    history = run.history()
    study, storage = history.study, history.storage
    study_id = history.study_id
    sources = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    attrs = storage.get_study_system_attrs(study_id)
    notes = {t._trial_id: get_note_from_system_attrs(attrs, t._trial_id)["body"] for t in sources}
    added = 0
    while len(sources) + added < total:
        source = sources[added % len(sources)]
        values = source.values if source.state != optuna.trial.TrialState.FAIL else None
        copy = optuna.trial.create_trial(state=source.state, values=values, params=source.params,
                                         distributions=source.distributions, user_attrs=source.user_attrs,
                                         system_attrs=source.system_attrs,
                                         intermediate_values=source.intermediate_values)
        study.add_trial(copy)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, len(sources) + added)
        # the note, stored where optuna_dashboard.save_note stores it (without its two reads of every attribute)
        storage.set_study_system_attr(study_id, note_ver_key(trial_id), 1)
        for key, value in split_body(notes[source._trial_id], trial_id).items():
            storage.set_study_system_attr(study_id, key, value)
        added += 1
    return added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 trials instead of 5,000")
    parser.add_argument("--trials", type=int, help="number of trials (overrides --quick)")
    parser.add_argument("--written", type=int, default=300, help="trials written through History and the "
                                                                 "publisher; the rest are copies (default 300)")
    args = parser.parse_args()
    trials = args.trials or (1000 if args.quick else 5000)
    written = min(args.written, trials)

    # tmpfs when there is one: the figures are about the dashboard, not about this machine's disk.
    root = tempfile.mkdtemp(prefix="attnas-dashboard-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        started = time.perf_counter()
        run = write_synthetic_history(root, name="bench", trials=written, controllers=("random", "evolution"))
        write_s = time.perf_counter() - started
        print(f"wrote {written} trials in {write_s:.0f} s", flush=True)
        started = time.perf_counter()
        copied = replicate(run, trials)
        copy_s = time.perf_counter() - started
        print(f"copied {copied} trials in {copy_s:.0f} s", flush=True)

        shipped_s = unpatched_trial_list(run)
        print(f"trial list request, optuna-dashboard as shipped: {shipped_s:.1f} s", flush=True)

        history = open_run(run.path).history()
        publisher = DashboardPublisher.for_run(run, history)
        started = time.perf_counter()
        publisher.refresh()
        refresh_s = time.perf_counter() - started
        assert not publisher.errors, publisher.errors

        started = time.perf_counter()
        report = build_report(run.path, Path(root) / "report.html")
        report_s = time.perf_counter() - started
        report_mb = report.stat().st_size / 1e6
        print(f"report in {report_s:.1f} s", flush=True)

        server = DashboardServer(run.path, port=0).start()
        try:
            host, port = server.address
            study_id = history.study_id
            cold_s, size = fetch(f"http://{host}:{port}/api/studies/{study_id}")
            warm_s, _ = fetch(f"http://{host}:{port}/api/studies/{study_id}")
            list_s, _ = fetch(f"http://{host}:{port}/api/studies")
            print(f"trial list request: cold {cold_s:.2f} s, warm {warm_s:.2f} s", flush=True)
            time.sleep(11)  # past the dashboard's 10 s trial cache, so the browser waits for a fresh read
            browser_s = browser_trial_list(server.url, trials)
        finally:
            server.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = [
        ["GET /api/studies (study list)", f"{list_s:.2f}", ""],
        [f"GET /api/studies/{study_id}: every trial for the trial list, cold", f"{cold_s:.2f}",
         f"{size / 1e6:.1f} MB of JSON"],
        [f"GET /api/studies/{study_id}: the same, warm (the dashboard caches trials for 10 s)", f"{warm_s:.2f}", ""],
        [f"GET /api/studies/{study_id} from optuna-dashboard as shipped (no per-trial index), cold",
         f"{shipped_s:.2f}", "its note and artifact lookups scan every study attribute for every trial"],
        ["Chromium: open the trial list (server cache expired) until all trials are listed and trial 0's note shows",
         "-" if browser_s is None else f"{browser_s:.2f}",
         "" if browser_s is not None else "skipped: no /usr/bin/chromium or playwright"],
        ["`attnas report` (build_report): figures, top 10 cells with drawings, HTML", f"{report_s:.2f}",
         f"{report_mb:.1f} MB file, plotly.js inlined"],
        ["publisher refresh: rebuild and save attnas's 5 figures into the study", f"{refresh_s:.2f}",
         "at most every 30 s during a search"],
        [f"writing {written} trials through History + publisher (drawing, note; tmpfs)", f"{write_s:.0f}",
         f"{1000 * write_s / max(1, written):.0f} ms per trial"],
        [f"copying them to {trials:,} trials (Study.add_trial + note)", f"{copy_s:.0f}", ""],
    ]
    body = (f"History of {trials:,} synthetic trials ({written} written through History and the dashboard "
            "publisher, the rest copies of them; two controllers, a note and an SVG drawing per trial, attnas's "
            "figures saved), SQLite on tmpfs, served by `attnas dashboard` (optuna-dashboard "
            f"{_version('optuna_dashboard')} with attnas's per-trial note/artifact index, see "
            "experiments/dashboard/speedup.py). Times in seconds.\n\n"
            + table(["what", "seconds", "notes"], rows))
    write_section("dashboard_speed", "Dashboard: trial list load and report build", body)
    print(body)


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
