"""The report's figures read through matplotlib's own objects: every overlap line its own
(colour, style), the chosen bridge the only red line, and no empty figure; the summary's
overlap line beside the overlap figure."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from neuronoverlap.report.figures import (
    CHOSEN_COLOUR,
    bridge_figure,
    distinct_styles,
    evaluation_figure_note,
    figure_notes,
    make_figures,
    probe_overlap_figure,
)

REDS = {"#d62728", "#ff9896"}


def _line_styles(axis) -> list[tuple[str, str]]:
    return [(matplotlib.colors.to_hex(line.get_color()), line.get_linestyle()) for line in axis.get_lines()]


def _overlap(n_pairs: int, n_layers: int = 6) -> dict:
    rng = np.random.default_rng(n_pairs)
    counts = rng.integers(0, 40, size=(n_pairs, n_layers))
    shares = np.full((n_pairs, 3), 1 / 3)
    return {
        "pairs": [f"p{i}-q{i}" for i in range(n_pairs)],
        "counts": counts.tolist(),
        "third_shares": shares.tolist(),
    }


@pytest.mark.parametrize("n_pairs", [3, 13, 20, 31])
def test_every_overlap_line_has_its_own_colour_and_style(n_pairs):
    thirds = {"early": [0, 1], "middle": [2, 3], "final": [4, 5]}
    figure = probe_overlap_figure(_overlap(n_pairs), thirds, d_mlp=256)
    styles = _line_styles(figure.axes[0])
    assert len(styles) == n_pairs and len(set(styles)) == n_pairs
    legend = figure.axes[0].get_legend()
    assert len(legend.get_texts()) == n_pairs


def test_distinct_styles_avoid_colours_and_stay_distinct():
    for n in range(1, 4 * 18 + 1):  # 18 colours of tab20 without its reds, 4 line styles
        styles = distinct_styles(n, avoid=tuple(REDS))
        assert len({(s["color"], s["linestyle"]) for s in styles}) == n
        assert not {s["color"] for s in styles} & REDS


def _bridge(n_candidates: int, chosen_index: int, probabilities: bool = True) -> dict:
    names = [f"b{i}" for i in range(n_candidates)]
    chosen = names[chosen_index]
    layers = [3, 4, 5]
    rows = [
        {
            "rank": i + 1,
            "bridge": b,
            "score": 1 - i / 10,
            "pvalue": 0.01,
            "probability": (1 / n_candidates if probabilities else None),
            "interval": [0.5 - i / 10, 1.5 - i / 10] if probabilities else [None, None],
            "chosen": b == chosen,
        }
        for i, b in enumerate(names)
    ]
    layer_rows = [
        {"layer": layer, "bridge": b, "score": float(i + layer), "overlap_neurons": 4, "bridge_neurons": 2}
        for layer in layers
        for i, b in enumerate(names)
    ]
    return {
        "name": "bridge-s-t",
        "src": "s",
        "tgt": "t",
        "method": "calibrated",
        "chosen": chosen,
        "window": layers,
        "layers": layers,
        "rows": rows,
        "layer_rows": layer_rows,
        "document": {"bootstrap": {"level": 0.95} if probabilities else None},
    }


@pytest.mark.parametrize(("n_candidates", "chosen_index"), [(2, 1), (6, 0), (12, 3), (25, 24)])
def test_the_chosen_bridge_is_the_only_red_line(n_candidates, chosen_index):
    figure = bridge_figure(_bridge(n_candidates, chosen_index))
    left = figure.axes[0]
    styles = dict(zip([line.get_label() for line in left.get_lines()], _line_styles(left), strict=True))
    chosen = f"b{chosen_index} (chosen)"
    assert styles[chosen][0] == CHOSEN_COLOUR
    others = [style for label, style in styles.items() if label != chosen]
    assert not {colour for colour, _ in others} & REDS
    assert len(set(others)) == len(others) == n_candidates - 1
    bars = figure.axes[2].patches
    red = [i for i, bar in enumerate(bars) if matplotlib.colors.to_hex(bar.get_facecolor()) == CHOSEN_COLOUR]
    assert red == [chosen_index]
    middle = figure.axes[1]  # intervals: one bar and one dot per bridge, only the chosen red
    assert middle.get_title() == "Score and 95% interval"
    red_marks = {
        line.get_ydata()[0]
        for line in middle.get_lines()
        if matplotlib.colors.to_hex(line.get_color()) == CHOSEN_COLOUR
    }
    assert len(middle.get_lines()) == 2 * n_candidates and red_marks == {chosen_index}


def test_a_selection_without_bootstrap_has_no_empty_probability_panel():
    figure = bridge_figure(_bridge(4, 0, probabilities=False))
    assert len(figure.axes) == 1


def _evaluation(accuracies: list[float | None]) -> dict:
    names = ["zero-shot"] + [f"bridge:b{i}" for i in range(len(accuracies) - 1)]
    return {
        "name": "bli-s-t",
        "conditions": [
            {"condition": c, "accuracy": a, "ci_low": a, "ci_high": a, "n": 100}
            for c, a in zip(names, accuracies, strict=True)
        ],
    }


def test_an_all_zero_evaluation_is_a_sentence_not_a_figure():
    assert evaluation_figure_note(_evaluation([0.0, 0.0])) == (
        "No figure for bli-s-t: every condition (zero-shot, bridge:b0) scored 0 of 100 items, so "
        "there are no bars to draw."
    )
    assert evaluation_figure_note(_evaluation([0.0, 0.01])) is None
    assert "no condition has an accuracy" in evaluation_figure_note(_evaluation([None, None]))
    data = {
        "layer_thirds": {},
        "provenance": {"d_mlp": 8},
        "probe_overlap": None,
        "similarity": None,
        "spectrum": None,
        "bridges": [],
        "evaluations": [_evaluation([0.0, 0.0]), _evaluation([0.1, 0.2])],
    }
    data["evaluations"][1]["name"] = "bli-s-u"
    assert list(make_figures(data)) == ["eval_bli-s-u"]
    assert list(figure_notes(data)) == ["eval_bli-s-t"]


def test_many_pairs_make_one_summary_line_of_ranges():
    from neuronoverlap.report.collect import overlap_lines

    overlap = {
        "pairs": ["a-b", "a-c", "b-c", "c-d"],
        "sizes": [10, 12, 9, 11],
        "third_shares": [[0.5, 0.4, 0.1], [0.52, 0.35, 0.13], [0.49, 0.37, 0.14], [0.5, 0.38, 0.12]],
    }
    assert overlap_lines(overlap) == [
        "O(s,t) of 4 pairs: 9-12 neurons each; share per third (lowest-highest over the pairs): "
        "early 49%-52%, middle 35%-40%, final 10%-14%."
    ]
    few = {key: value[:2] for key, value in overlap.items()}
    assert overlap_lines(few) == [
        "O(a-b) has 10 neurons: early 50%, middle 40%, final 10%.",
        "O(a-c) has 12 neurons: early 52%, middle 35%, final 13%.",
    ]
