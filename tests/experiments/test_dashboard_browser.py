"""In a real browser (headless Debian Chromium driven by Playwright): the dashboard of a finished run shows the trial
list, a trial's note and cell drawing, and attnas's figures; the report opens from file:// with every figure and
drawing and makes no network request. Screenshots are kept: under $ATTNAS_TEST_ARTIFACTS when set, else in the
pytest temporary folder (the path is printed; run pytest with -s or -rA to see it)."""
import os
import tempfile
from pathlib import Path

import pytest

from attnas.experiments.dashboard.figures import FIGURE_TITLES
from attnas.experiments.dashboard.report import build_report
from attnas.experiments.dashboard.server import DashboardServer
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from tests.experiments.test_dashboard_server import TRIALS, scratch_folder

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory(prefix="attnas-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": 1500, "height": 1000})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    with scratch_folder(tmp_path_factory) as root:
        yield write_synthetic_history(root, name="browsed", trials=TRIALS, controllers=("random", "evolution"))


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ.get("ATTNAS_TEST_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def rendered(page, selector: str) -> None:
    """Wait until the plotly figure in `selector` has drawn its SVG."""
    page.locator(f"{selector} .main-svg").first.wait_for(state="attached", timeout=60_000)


def test_dashboard_shows_trials_drawings_and_attnas_figures(browser, finished_run, screenshots):
    best = finished_run.history().best(1)[0]
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with DashboardServer(finished_run.path, port=0).start() as server:
        page.goto(server.url)
        for figure_id, title in FIGURE_TITLES.items():
            selector = f"#user-defined-plot\\:{figure_id}"
            rendered(page, selector)
            assert page.locator(selector).inner_text().count(title.split(" (")[0][:30]) >= 1
        study_shot = screenshots / "dashboard-study.png"
        page.screenshot(path=str(study_shot), full_page=True)

        page.goto(f"{server.url}/trials")  # the "Trials (List)" view
        page.get_by_text(f"{TRIALS} Trials").wait_for(timeout=60_000)
        page.get_by_text(f"Trial {best.number}", exact=True).first.click()
        page.get_by_text(f"Trial {best.number} (trial_id=").wait_for(timeout=60_000)
        page.get_by_text(f"Cell {best.hash} (trial {best.number}, complete)").wait_for(timeout=60_000)
        in_note = page.get_by_role("img", name=f"drawing of cell {best.hash}")  # the note shows it full size
        in_note.wait_for(timeout=60_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=in_note.element_handle(),
                               timeout=60_000)
        page.screenshot(path=str(screenshots / "dashboard-trial-note.png"))
        drawing = page.locator("img[src*='/artifacts/']").last  # and the Artifacts card lists it
        drawing.scroll_into_view_if_needed(timeout=60_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=drawing.element_handle(),
                               timeout=60_000)
        source = drawing.get_attribute("src")
        response = page.request.get(server.url.split("/dashboard")[0] + source)
        assert response.headers["content-type"] == "image/svg+xml" and best.hash in response.text()
        trial_shot = screenshots / "dashboard-trial.png"
        page.screenshot(path=str(trial_shot), full_page=True)
    assert errors == []
    print(f"\nscreenshots: {study_shot} {trial_shot}")


def test_report_opens_from_file_with_every_figure_and_no_network(browser, finished_run, screenshots):
    report = build_report(finished_run.path, screenshots / "report.html")
    page = browser.new_page()
    outside = []

    def only_files(route):
        if route.request.url.startswith(("file://", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_files)
    page.goto(report.as_uri())
    for figure_id in FIGURE_TITLES:
        rendered(page, f"#{figure_id}")
        assert page.locator(f"#{figure_id} .main-svg .trace, #{figure_id} .main-svg .bars, "
                            f"#{figure_id} .main-svg .scatterlayer").count() > 0
    images = page.locator("img.cell")
    assert images.count() == min(10, len(finished_run.history().best(10)))
    assert page.evaluate("() => [...document.images].every(img => img.complete && img.naturalWidth > 0)")
    assert outside == []
    shot = screenshots / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")


def test_dashboard_refuses_the_browsers_writes_by_default(browser, finished_run):
    """The dashboard's own write requests (delete the study, edit its note), sent from its page, are refused; the
    study and its trials are still there and still shown."""
    page = browser.new_page()
    with DashboardServer(finished_run.path, port=0).start() as server:
        page.goto(server.url)
        rendered(page, f"#user-defined-plot\\:{next(iter(FIGURE_TITLES))}")
        statuses = page.evaluate("""async (study) => {
            const json = {"Content-Type": "application/json"};
            const deleted = await fetch(`/api/studies/${study}`, {method: "DELETE"});
            const noted = await fetch(`/api/studies/${study}/note`,
                                      {method: "PUT", headers: json, body: JSON.stringify({version: 1, body: "x"})});
            const renamed = await fetch(`/api/studies/${study}/rename`,
                                        {method: "POST", headers: json, body: JSON.stringify({study_name: "x"})});
            return [deleted.status, noted.status, renamed.status];
        }""", server.history.study._study_id)
        assert statuses == [405, 405, 405]
        page.goto(f"{server.url}/trials")
        page.get_by_text(f"{TRIALS} Trials").wait_for(timeout=60_000)
    assert len(finished_run.history().trials()) == TRIALS
