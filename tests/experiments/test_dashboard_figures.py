"""attnas's figures: the numbers behind them against hand-computed values, the figures against those numbers, and
the per-trial note."""

import numpy as np
import pytest
import yaml

from attnas.experiments.dashboard.data import Reference, TrialPoint
from attnas.experiments.dashboard.figures import (CURVES_SHOWN, best_so_far, build_figures, op_dim_frequencies,
                                           pareto_front)
from attnas.experiments.dashboard.notes import trial_note
from attnas.search_space import CellSpec, load_space, load_zoo


def test_best_so_far_is_the_running_max_skipping_unfinished():
    assert best_so_far([None, 0.3, 0.2, None, 0.5, 0.4, 0.5]) == [None, 0.3, 0.3, 0.3, 0.5, 0.5, 0.5]
    assert best_so_far([]) == []
    values = np.random.default_rng(1).random(200)
    running = best_so_far(values)
    assert np.allclose(running, np.maximum.accumulate(values))
    assert all(b >= a for a, b in zip(running, running[1:]))


def test_pareto_front_on_a_hand_made_set():
    points = [(10, 0.5), (5, 0.4), (20, 0.6), (15, 0.55), (12, 0.45), (5, 0.3), (30, 0.6), (25, 0.58)]
    # (12, .45) loses to (10, .5); (5, .3) to (5, .4); (30, .6) and (25, .58) to (20, .6)
    assert pareto_front(points) == [1, 0, 3, 2]
    assert pareto_front([(1, 0.5), (1, 0.5)]) == [0]
    assert pareto_front([]) == []


def test_pareto_front_matches_the_definition_on_random_points():
    rng = np.random.default_rng(2)
    points = [(float(c), float(a)) for c, a in zip(rng.integers(1, 20, 60), rng.integers(0, 15, 60) / 15)]
    front = set(pareto_front(points))

    def dominated(i):
        return any(points[j][0] <= points[i][0] and points[j][1] >= points[i][1] and points[j] != points[i]
                   for j in range(len(points)))

    unique_first = {p: i for i, p in reversed(list(enumerate(points)))}
    assert front == {i for p, i in unique_first.items() if not dominated(i)}


def cell(*nodes):
    return {"width": 0.25, "nodes": {f"n{i}": dict(n) for i, n in enumerate(nodes)}, "output": []}


def test_op_and_dim_frequencies_hand_counted():
    cells = [
        cell({"op": "gather", "dim": "spatial"}, {"op": "distribute", "dim": "spatial"}),  # 0.9
        cell({"op": "dot_attention", "dim": "temporal"}),  # 0.8
        cell({"op": "dot_attention", "dim": "spatial"}, {"op": "combine"}),  # 0.1
        cell({"op": "map_attention", "dim": "channel"}),  # 0.5
    ]
    table = op_dim_frequencies(cells, [0.9, 0.8, 0.1, 0.5], top_fraction=0.5)
    assert table["op"] == {"combine": (0.0, 0.25), "distribute": (0.5, 0.25), "dot_attention": (0.5, 0.5),
                           "gather": (0.5, 0.25), "map_attention": (0.0, 0.25)}
    assert table["dim"] == {"channel": (0.0, 0.25), "spatial": (0.5, 0.5), "temporal": (0.5, 0.25)}
    # the default top 10% of four cells is the single best one
    table = op_dim_frequencies(cells, [0.9, 0.8, 0.1, 0.5])
    assert table["op"]["gather"] == (1.0, 0.25) and table["op"]["dot_attention"] == (0.0, 0.5)
    with pytest.raises(ValueError):
        op_dim_frequencies(cells, [0.9])


def points_fixture():
    space = load_space("small")
    rng = np.random.default_rng(3)
    points = []
    for number in range(30):
        spec = space.sample(rng)
        state = "failed" if number % 11 == 5 else ("pruned" if number % 7 == 3 else "complete")
        value = float(rng.random()) if state == "complete" else None
        controller = ("random", "evolution")[number % 2]
        points.append(TrialPoint(number=number, state=state, value=value, controller=controller,
                                 cell=space.to_data(spec), hash=spec.hash, curve=(0.1, 0.2, value or 0.15),
                                 macs=float(rng.integers(1, 50)) * 1e6, finished_s=float(60 * (30 - number))))
    references = [Reference(name="none", accuracy=0.3, macs=1e6, curve=(0.1, 0.2, 0.3)),
                  Reference(name="non_local", accuracy=0.6, macs=2e6, curve=(0.2, 0.4, 0.6))]
    return points, references


def test_figures_show_the_numbers():
    points, references = points_fixture()
    figures = build_figures(points, references)
    assert list(figures) == ["attnas-best-by-trial", "attnas-best-by-time", "attnas-accuracy-vs-macs",
                             "attnas-ops-top10", "attnas-learning-curves"]
    by_trial = {t.name: t for t in figures["attnas-best-by-trial"].data}
    assert set(by_trial) == {"random", "evolution"}
    for controller, trace in by_trial.items():
        mine = [p for p in points if p.controller == controller]
        assert list(trace.x) == [p.number for p in mine]
        assert list(trace.y) == best_so_far(p.value for p in mine)
    # by time: trials finished in reverse order of their numbers here
    by_time = {t.name: t for t in figures["attnas-best-by-time"].data}
    mine = sorted((p for p in points if p.controller == "random"), key=lambda p: p.finished_s)
    assert list(by_time["random"].y) == best_so_far(p.value for p in mine)
    assert list(by_time["random"].x) == [p.finished_s / 60 for p in mine]

    stars, scatter, front = figures["attnas-accuracy-vs-macs"].data
    complete = [p for p in points if p.state == "complete"]
    assert list(scatter.customdata) == [p.number for p in complete]
    wanted = [complete[i] for i in pareto_front([(p.macs, p.value) for p in complete])]
    assert list(front.customdata) == [p.number for p in wanted] and list(front.y) == [p.value for p in wanted]
    assert list(stars.text) == ["backbone alone", "non-local"] and list(stars.y) == [0.3, 0.6]

    table = op_dim_frequencies([p.cell for p in complete], [p.value for p in complete])
    bars = figures["attnas-ops-top10"].data
    top_op, all_op = bars[0], bars[1]
    assert list(top_op.x) == list(table["op"]) and list(top_op.y) == [v[0] for v in table["op"].values()]
    assert list(all_op.y) == [v[1] for v in table["op"].values()]
    assert list(bars[2].y) == [v[0] for v in table["dim"].values()]

    curves = figures["attnas-learning-curves"].data
    best = sorted(complete, key=lambda p: -p.value)[:CURVES_SHOWN]
    assert [t.name.split()[2] for t in curves[:CURVES_SHOWN]] == [str(p.number) for p in best]
    assert [t.name for t in curves[CURVES_SHOWN:]] == ["backbone alone", "non-local"]
    assert all(shape.y0 in (0.3, 0.6) for shape in figures["attnas-best-by-trial"].layout.shapes)


def test_figures_of_an_empty_history_still_build():
    figures = build_figures([])
    assert all(len(f.to_json()) > 0 for f in figures.values())


def test_trial_note_has_spec_hash_cost_and_node():
    spec = load_zoo("double_attention")
    point = TrialPoint(number=7, state="complete", value=0.61234, controller="evolution", cell=spec.to_dict(),
                       hash=spec.hash, curve=(0.5, 0.61234), macs=209.7e6, params=150_000, latency_ms=12.34,
                       node="10.0.0.2/abcd1234")
    note = trial_note(point)
    assert note.startswith(f"### Cell `{spec.hash}` (trial 7, complete)")
    assert "| 0.6123 | 209.70M | 150.00k | 12.3 ms | evolution | 10.0.0.2/abcd1234 |" in note
    block = note.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert CellSpec.from_dict(yaml.safe_load(block)).hash == spec.hash
    failed = trial_note(TrialPoint(number=8, state="failed", value=None, controller="random", cell=spec.to_dict(),
                                   hash=spec.hash), reason="CUDA out of memory\ntraceback ...")
    assert "**Failed:** CUDA out of memory" in failed and "traceback" not in failed
    pruned = trial_note(TrialPoint(number=9, state="pruned", value=None, controller="random", cell=spec.to_dict(),
                                   hash=spec.hash, curve=(0.2, 0.3)))
    assert "| 0.3000 (stopped early after epoch 2) |" in pruned


def test_ops_figure_says_when_the_top_10_percent_is_too_small():
    points, _ = points_fixture()
    complete = [p for p in points if p.state == "complete"]
    few = build_figures(complete[:20])["attnas-ops-top10"]  # a top 10% of 2 cells
    assert len(few.data) == 0
    [message] = [a.text for a in few.layout.annotations if a.visible is not False]
    assert message.startswith("Too few complete cells yet: 20 cells, so the top 10% would be 2 cells.")
    assert "from 21 complete cells on" in message
    enough = build_figures(complete[:21])["attnas-ops-top10"]
    assert [t.name for t in enough.data[:2]] == ["top 10% (3 cells)", "all (21 cells)"]


def test_reference_stars_are_drawn_under_the_cells_with_labels_leaning_inwards():
    points, references = points_fixture()
    stars, cells, front = build_figures(points, references)["attnas-accuracy-vs-macs"].data
    assert stars.name == "reference cells" and stars.cliponaxis is False
    assert list(stars.textposition) == ["top right", "top left"]  # the cheapest and the dearest reference
