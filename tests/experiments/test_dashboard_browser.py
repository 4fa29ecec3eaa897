"""In a real browser (headless Debian Chromium driven by Playwright, a 1280 px wide window): the dashboard of a finished
run shows the trial list, a trial's note and cell drawing, and attnas's figures, and no page is wider than the window;
the report opens from file:// with every figure and drawing and makes no network request; figure labels stay inside
their figures and a Pareto cell under a reference star stays visible. Screenshots are kept: under
$ATTNAS_TEST_ARTIFACTS when set, else in the pytest temporary folder (the path is printed; run pytest with -s or
-rA to see it)."""
import os
import tempfile
from pathlib import Path

import pytest

from attnas.experiments.dashboard.data import REFERENCES_ATTR
from attnas.experiments.dashboard.figures import FIGURE_TITLES, pareto_front
from attnas.experiments.dashboard.report import build_report
from attnas.experiments.dashboard.server import DashboardServer
from attnas.experiments.dashboard.synthetic import write_synthetic_history
from tests.experiments.test_dashboard_server import TRIALS

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
WIDTH = 1280
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
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": WIDTH, "height": 1000})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    yield write_synthetic_history(root, name="browsed", trials=TRIALS, controllers=("random", "evolution"))


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ.get("ATTNAS_TEST_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def rendered(page, selector: str) -> None:
    """Wait until the plotly figure in `selector` has drawn its SVG."""
    page.locator(f"{selector} .main-svg").first.wait_for(state="attached", timeout=60_000)


def page_width(page) -> int:
    """The widest the page's content reaches, in CSS pixels."""
    return page.evaluate("() => Math.max(document.documentElement.scrollWidth, "
                         "...[...document.querySelectorAll('main *')].map(e => e.getBoundingClientRect().right))")


def label_visible(page, figure: str, text: str) -> bool:
    """Whether the plotly text `text` in `figure` lies whole inside the plot area (where nothing clips it)."""
    label = page.locator(f"{figure} .main-svg text", has_text=text).first
    label.scroll_into_view_if_needed(timeout=60_000)
    area = page.locator(f"{figure} .draglayer .nsewdrag").first  # plotly's drag cover spans the plot area
    box, plot = label.bounding_box(), area.bounding_box()
    return (plot["x"] <= box["x"] and box["x"] + box["width"] <= plot["x"] + plot["width"]
            and plot["y"] <= box["y"] and box["y"] + box["height"] <= plot["y"] + plot["height"])


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
        assert page_width(page) <= WIDTH
        # the backbone alone's label is drawn whole, inside the accuracy / multiply-adds figure
        assert label_visible(page, "#user-defined-plot\\:attnas-accuracy-vs-macs", "backbone alone")
        # with fewer than 21 complete cells, the ops figure says so instead of drawing a "top 10%" of one cell
        ops = page.locator("#user-defined-plot\\:attnas-ops-top10").inner_text()
        assert "Too few complete cells yet" in ops and "(1 cells)" not in ops

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
        # the long one-line `cell` attribute and the note's YAML wrap inside the window
        assert page_width(page) <= WIDTH
        attribute = page.get_by_text('cell {"width"').first
        attribute.scroll_into_view_if_needed(timeout=60_000)
        box = attribute.bounding_box()
        assert box["x"] + box["width"] <= WIDTH
        page.screenshot(path=str(screenshots / "dashboard-trial-attributes.png"))
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
        if figure_id == "attnas-ops-top10":  # 12 trials are too few for a top 10% (see the dashboard test)
            assert "Too few complete cells yet" in page.locator(f"#{figure_id}").inner_text()
            continue
        assert page.locator(f"#{figure_id} .main-svg .trace, #{figure_id} .main-svg .bars, "
                            f"#{figure_id} .main-svg .scatterlayer").count() > 0
    images = page.locator("img.cell")
    assert images.count() == min(10, len(finished_run.history().best(10)))
    assert page.evaluate("() => [...document.images].every(img => img.complete && img.naturalWidth > 0)")
    assert outside == []
    shot = screenshots / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")


@pytest.fixture(scope="module")
def references_at_the_edges(tmp_path_factory):
    """A run whose backbone alone costs least (its star is the leftmost point, where a centred label would run off
    the plot) and whose non-local reference sits exactly on a Pareto cell."""
    root = tmp_path_factory.mktemp("runs")
    run = write_synthetic_history(root, name="edges", trials=TRIALS)
    history = run.history()
    complete = [r for r in history.trials() if r.state == "complete"]
    front = [complete[i] for i in pareto_front([(r.values["macs"], r.value) for r in complete])]
    hidden = front[len(front) // 2]
    references = dict(history.metadata[REFERENCES_ATTR])
    references["none"] = {**references["none"], "macs": 0.9 * min(r.values["macs"] for r in complete)}
    references["non_local"] = {**references["non_local"], "macs": hidden.values["macs"],
                               "accuracy": hidden.value}
    history.set_metadata(**{REFERENCES_ATTR: references})
    yield run, hidden


def test_reference_labels_stay_inside_and_pareto_cells_stay_visible(browser, references_at_the_edges, screenshots):
    run, hidden = references_at_the_edges
    report = build_report(run.path, screenshots / "report-edges.html")
    page = browser.new_page()
    page.goto(report.as_uri())
    figure = "#attnas-accuracy-vs-macs"
    rendered(page, figure)
    assert label_visible(page, figure, "backbone alone")
    assert label_visible(page, figure, "non-local")
    # the Pareto cell under the non-local star is drawn on top of it: the pixel at its centre is the front's red
    traces = page.locator(f"{figure} .scatterlayer .trace")
    front = traces.nth(2)  # reference stars, cells, then the Pareto front
    index = [p.number for p in pareto_points(run)].index(hidden.number)
    point = front.locator("path.point").nth(index)
    point.scroll_into_view_if_needed(timeout=60_000)
    box = point.bounding_box()
    centre = {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}
    assert pixel(page, centre) == (0xd6, 0x27, 0x28)
    page.screenshot(path=str(screenshots / "report-edges.png"), full_page=True)


def pareto_points(run):
    complete = [r for r in run.history().trials() if r.state == "complete"]
    return [complete[i] for i in pareto_front([(r.values["macs"], r.value) for r in complete])]


def pixel(page, at: dict) -> tuple[int, int, int]:
    """The colour of one CSS pixel of the page, from a 1x1 screenshot (a one-pixel PNG row is stored unfiltered
    whatever its filter byte says, since there is no pixel to its left or above it)."""
    import struct
    import zlib

    png = page.screenshot(clip={"x": at["x"], "y": at["y"], "width": 1, "height": 1}, scale="css")
    data, offset = b"", 8
    while offset < len(png):
        length, kind = struct.unpack(">I4s", png[offset:offset + 8])
        if kind == b"IDAT":
            data += png[offset + 8:offset + 8 + length]
        offset += 12 + length
    return tuple(zlib.decompress(data)[1:4])


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
