"""The report's figures (matplotlib, Agg backend), each rendered once to PNG bytes: embedded
in the HTML page as a `data:` URI and saved as `figures/<name>.png`."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuronoverlap.analyses import THIRDS  # noqa: E402
from neuronoverlap.evaluation.results import ZERO_SHOT  # noqa: E402
from neuronoverlap.numbers import p_is, permutation_floor, probability  # noqa: E402
from neuronoverlap.report.collect import slug  # noqa: E402

DPI = 110
THIRD_SHADES = {"early": "#f2f2f2", "middle": "#e3edf7", "final": "#f7ece3"}
CHOSEN_COLOUR = "#d62728"  # the chosen bridge, and only it
LINE_STYLES = ("-", "--", ":", "-.")
_REDS = {"#d62728", "#ff9896"}  # tab20's red pair: kept for the chosen bridge


def _hex(colour: Any) -> str:
    return matplotlib.colors.to_hex(colour).lower()


def distinct_styles(n: int, avoid: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """`n` distinct (colour, line style) pairs for line plots: tab10's colours while they suffice,
    else tab20's, repeated with dashed, dotted and dash-dotted lines past 20 (distinct up to 4 x
    the colours left: 80 lines, 72 without the reds). Colours in `avoid` are never used."""
    avoid_hex = {_hex(c) for c in avoid}
    colours: list[str] = []
    for palette in ("tab10", "tab20"):
        colours = [c for c in (_hex(c) for c in matplotlib.colormaps[palette].colors) if c not in avoid_hex]
        if n <= len(colours):
            break
    return [
        {"color": colours[i % len(colours)], "linestyle": LINE_STYLES[i // len(colours) % len(LINE_STYLES)]}
        for i in range(n)
    ]


@dataclass(frozen=True)
class ReportFigure:
    """One figure: file stem, title, caption, and its PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes

    def save(self, folder: Path) -> Path:
        path = folder / f"{self.name}.png"
        path.write_bytes(self.png)
        return path


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _shade_thirds(axis: plt.Axes, thirds: dict[str, list[int]]) -> None:
    """Background bands for the early/middle/final thirds, labelled at the top."""
    for name in THIRDS:
        layers = thirds.get(name) or []
        if not layers:
            continue
        axis.axvspan(layers[0] - 0.5, layers[-1] + 0.5, color=THIRD_SHADES[name], zorder=0)
        axis.text(
            (layers[0] + layers[-1]) / 2,
            1.0,
            name,
            transform=axis.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
            color="#555555",
        )


def _layer_ticks(axis: plt.Axes, layers: list[int]) -> None:
    step = max(1, int(np.ceil(len(layers) / 20)))
    axis.set_xticks(layers[::step])
    axis.set_xlim(min(layers) - 0.5, max(layers) + 0.5)


def _share_axis(axis: plt.Axes, d_mlp: int) -> None:
    """A right-hand axis reading the counts as a percentage of the layer's d_mlp neurons."""
    right = axis.secondary_yaxis("right", functions=(lambda c: 100 * c / d_mlp, lambda s: s * d_mlp / 100))
    right.set_ylabel("% of d_mlp")


def probe_overlap_figure(overlap: dict[str, Any], thirds: dict[str, list[int]], d_mlp: int) -> plt.Figure:
    """Left: O(s,t) neurons per layer for every pair; right: their shares per third."""
    pairs, counts = overlap["pairs"], np.array(overlap["counts"])
    layers = list(range(counts.shape[1]))
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    _shade_thirds(left, thirds)
    for pair, row, style in zip(pairs, counts, distinct_styles(len(pairs)), strict=True):
        left.plot(layers, row, marker="o", markersize=4, label=f"O({pair})", zorder=2, **style)
    _layer_ticks(left, layers)
    left.set_xlabel("layer")
    left.set_ylabel("overlap neurons")
    left.set_ylim(bottom=0)
    _share_axis(left, d_mlp)
    if len(pairs) <= 6:
        left.legend(fontsize=8, loc="upper left")
    else:  # below the axes, where it covers no line
        left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(5, len(pairs)))
    left.set_title("Overlap neurons O(s,t) per layer", pad=16)

    shares = np.array(overlap["third_shares"])
    y = np.arange(len(pairs))
    start = np.zeros(len(pairs))
    colours = ("#9e9e9e", "#4c78a8", "#f58518")
    for k, name in enumerate(THIRDS):
        right.barh(y, shares[:, k], left=start, color=colours[k], label=name)
        for i, value in enumerate(shares[:, k]):
            if value >= 0.08:
                right.text(
                    start[i] + value / 2,
                    i,
                    f"{value:.0%}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white",
                )
        start += shares[:, k]
    right.set_yticks(y, [f"O({p})" for p in pairs])
    right.invert_yaxis()
    right.set_xlim(0, 1)
    right.set_xlabel("share of the pair's overlap neurons")
    right.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    right.set_title("Where they sit", pad=16)
    figure.tight_layout()
    return figure


def corpus_overlap_figure(
    pair_layers: dict[str, Any], thirds: dict[str, list[int]], d_mlp: int
) -> plt.Figure:
    """Mean (and range) over language pairs of |A_a & A_b| per layer."""
    mean = np.array(pair_layers["mean_counts"])
    low, high = np.array(pair_layers["min_counts"]), np.array(pair_layers["max_counts"])
    layers = list(range(mean.size))
    figure, axis = plt.subplots(figsize=(9, 3.8))
    _shade_thirds(axis, thirds)
    axis.fill_between(layers, low, high, color="#4c78a8", alpha=0.25, zorder=1, label="min-max over pairs")
    axis.plot(
        layers,
        mean,
        marker="o",
        markersize=4,
        color="#4c78a8",
        zorder=2,
        label=f"mean over {len(pair_layers['pairs'])} pairs",
    )
    _layer_ticks(axis, layers)
    axis.set_ylim(bottom=0)
    axis.set_xlabel("layer")
    axis.set_ylabel("shared active neurons")
    _share_axis(axis, d_mlp)
    axis.legend(fontsize=8, loc="upper left")
    axis.set_title("Corpus overlaps A_a & A_b per layer", pad=16)
    figure.tight_layout()
    return figure


def _heatmap(
    codes: list[str],
    values: np.ndarray,
    title: str,
    label: str,
    vmin: float,
    vmax: float,
    cmap: str = "viridis",
) -> plt.Figure:
    """Off-diagonal values coloured on [vmin, vmax] and written in the cells with as many
    decimals as their spread needs; the diagonal is left grey."""
    n = len(codes)
    off = ~np.eye(n, dtype=bool)
    side = max(4.5, 0.5 * n + 1.8)
    figure, axis = plt.subplots(figsize=(side + 1.4, side))
    colours = matplotlib.colormaps[cmap].with_extremes(bad="#dddddd")
    image = axis.imshow(np.where(off, values, np.nan), cmap=colours, vmin=vmin, vmax=vmax)
    axis.set_xticks(range(n), codes)
    axis.set_yticks(range(n), codes)
    axis.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    axis.set_title(title, fontsize=11)
    spread = vmax - vmin
    digits = int(min(4, max(2, np.ceil(-np.log10(spread)) + 1))) if spread > 0 else 2
    if n <= 20:
        size = 8 if digits <= 2 or n <= 10 else 7
        for i, j in zip(*np.nonzero(off), strict=True):
            red, green, blue, _ = colours(image.norm(values[i, j]))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
            axis.text(
                j,
                i,
                f"{values[i, j]:.{digits}f}",
                ha="center",
                va="center",
                fontsize=size,
                color="black" if light else "white",
            )
    bar = figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    bar.formatter.set_useOffset(False)
    bar.set_label(label)
    figure.tight_layout()
    return figure


def _value_range(values: np.ndarray, low: float | None = None) -> tuple[float, float]:
    """The range of the off-diagonal values (`low` fixes the bottom); never empty."""
    off = values[~np.eye(len(values), dtype=bool)]
    if off.size == 0:
        return 0.0, 1.0
    bottom = float(off.min()) if low is None else low
    top = float(off.max())
    if top - bottom < 1e-12:
        bottom, top = bottom - 1e-3, top + 1e-3
    return bottom, top


def jaccard_figure(similarity: dict[str, Any]) -> plt.Figure:
    """Jaccard of the corpus active sets, coloured from its smallest to its largest value."""
    values = np.array(similarity["jaccard"])
    return _heatmap(
        similarity["languages"],
        values,
        "Jaccard of the active sets",
        "Jaccard |A_a & A_b| / |A_a | A_b|",
        *_value_range(values),
    )


def cosine_figure(similarity: dict[str, Any]) -> tuple[plt.Figure, int]:
    """The cosine over shared neurons sits close to 1: drawn as 1 - cosine in units of
    10^exponent (returned), so that its differences can be read."""
    values = 1.0 - np.array(similarity["cosine"])
    off = values[~np.eye(len(values), dtype=bool)]
    largest = float(np.abs(off).max()) if off.size else 0.0
    exponent = int(np.floor(np.log10(largest))) if largest > 0 else 0
    scaled = values / 10.0**exponent
    unit = f" (x 1e{exponent})" if exponent else ""
    figure = _heatmap(
        similarity["languages"],
        scaled,
        f"1 - cosine of activation probabilities over shared neurons{unit}",
        f"1 - cosine{unit}",
        *_value_range(scaled, low=0.0),
        cmap="viridis_r",
    )
    return figure, exponent


def _has_probabilities(bridge: dict[str, Any]) -> bool:
    return any(r["probability"] is not None for r in bridge["rows"])


def bridge_figure(bridge: dict[str, Any]) -> plt.Figure:
    """Left: score per real layer id for each candidate, the chosen bridge alone in red; when the
    selection has a bootstrap, middle: each bridge's window score with its interval, right: the
    selection probabilities."""
    rows = bridge["rows"]
    ranking = [r["bridge"] for r in rows]
    by_key = {(r["layer"], r["bridge"]): r["score"] for r in bridge["layer_rows"]}
    layers = bridge["layers"]
    with_probabilities = _has_probabilities(bridge)
    if with_probabilities:
        figure, (left, middle, right) = plt.subplots(
            1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [2, 1.1, 1]}
        )
        _interval_panel(middle, bridge)
    else:
        figure, left = plt.subplots(figsize=(8.5, 4.2))
    others = iter(distinct_styles(len(ranking), avoid=tuple(_REDS)))
    for b in ranking:
        scores = [by_key.get((layer, b)) for layer in layers]
        values = np.array([np.nan if s is None else s for s in scores], dtype=float)
        chosen = b == bridge["chosen"]
        style = {"color": CHOSEN_COLOUR, "linestyle": "-"} if chosen else next(others)
        left.plot(
            layers,
            values,
            marker="o",
            markersize=5 if chosen else 4,
            linewidth=2.6 if chosen else 1.3,
            zorder=3 if chosen else 2,
            label=f"{b} ({bridge.get('label', 'chosen')})" if chosen else b,
            **style,
        )
    if layers:
        _layer_ticks(left, layers)
    left.set_xlabel("layer (model's layer id)")
    left.set_ylabel(f"score ({bridge['method']})")
    left.legend(fontsize=8, ncol=2, loc="best")
    left.set_title(f"Bridge scores per layer, {bridge['src']}->{bridge['tgt']}")
    if not with_probabilities:
        figure.tight_layout()
        return figure

    probabilities = [r["probability"] or 0.0 for r in rows]
    y = np.arange(len(rows))
    colours = [CHOSEN_COLOUR if r["chosen"] else "#4c78a8" for r in rows]
    right.barh(y, probabilities, color=colours)
    right.set_yticks(y, ranking)
    right.invert_yaxis()
    right.set_xlim(0, max(1.0, max(probabilities, default=0) * 1.35))
    n_random = (bridge["document"].get("parameters") or {}).get("n_random")
    floor = permutation_floor(n_random) if n_random else None
    for i, r in enumerate(rows):
        right.text(
            probabilities[i] + 0.01,
            i,
            f"{probability(probabilities[i])} ({p_is(r['pvalue'], floor=floor)})",
            va="center",
            fontsize=8,
        )
    right.set_xlabel("share of bootstrap resamples ranked first")
    right.set_title("Selection probability (rank order)")
    figure.tight_layout()
    return figure


def _interval_panel(axis: plt.Axes, bridge: dict[str, Any]) -> None:
    """Each bridge's window score (dot) and bootstrap interval (bar), in rank order."""
    rows = bridge["rows"]
    y = np.arange(len(rows))
    level = ((bridge.get("document") or {}).get("bootstrap") or {}).get("level")
    for i, r in enumerate(rows):
        colour = CHOSEN_COLOUR if r["chosen"] else "#4c78a8"
        low, high = r.get("interval") or (None, None)
        if low is not None and high is not None:
            axis.plot([low, high], [i, i], color=colour, linewidth=2.2 if r["chosen"] else 1.4)
        if r["score"] is not None:
            axis.plot([r["score"]], [i], "o", color=colour, markersize=6 if r["chosen"] else 4)
    axis.set_yticks(y, [r["bridge"] for r in rows])
    axis.invert_yaxis()
    axis.set_xlabel(f"window score ({bridge['method']})")
    axis.set_title(f"Score and {level:.0%} interval" if level else "Score and interval")


def bridge_figure_note(bridge: dict[str, Any]) -> str | None:
    """Why the bridge figure is not drawn (no per-layer score and no selection probability),
    else None."""
    if any(r["score"] is not None for r in bridge["layer_rows"]) or _has_probabilities(bridge):
        return None
    return (
        f"No figure for the bridge selection {bridge['src']}->{bridge['tgt']}: no candidate has "
        "neurons in any layer of the window, so there is no score to draw."
    )


def evaluation_figure_note(evaluation: dict[str, Any]) -> str | None:
    """Why the evaluation figure is not drawn (no accuracies, or every one is 0), else None."""
    conditions = evaluation["conditions"]
    accuracies = [c["accuracy"] for c in conditions if c["accuracy"] is not None]
    if not conditions:
        return None  # a free-form document: shown as a table, no figure expected
    if not accuracies:
        return f"No figure for {evaluation['name']}: no condition has an accuracy."
    if all(a == 0 for a in accuracies):
        sizes = sorted({c["n"] for c in conditions if c.get("n") is not None})
        words = f" of {'/'.join(str(n) for n in sizes)} items" if sizes else ""
        names = ", ".join(c["condition"] for c in conditions)
        return (
            f"No figure for {evaluation['name']}: every condition ({names}) scored 0{words}, "
            "so there are no bars to draw."
        )
    return None


def evaluation_figure(evaluation: dict[str, Any]) -> plt.Figure:
    """Accuracy per condition with its bootstrap interval."""
    conditions = evaluation["conditions"]
    names = [c["condition"] for c in conditions]
    accuracy = np.array([np.nan if c["accuracy"] is None else c["accuracy"] for c in conditions], dtype=float)
    low = np.array(
        [a if c["ci_low"] is None else c["ci_low"] for a, c in zip(accuracy, conditions, strict=True)],
        dtype=float,
    )
    high = np.array(
        [a if c["ci_high"] is None else c["ci_high"] for a, c in zip(accuracy, conditions, strict=True)],
        dtype=float,
    )
    figure, axis = plt.subplots(figsize=(max(5, 1.1 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    colours = ["#9e9e9e" if n == ZERO_SHOT else "#4c78a8" for n in names]
    axis.bar(x, accuracy, color=colours)
    axis.errorbar(
        x,
        accuracy,
        yerr=[np.clip(accuracy - low, 0, None), np.clip(high - accuracy, 0, None)],
        fmt="none",
        ecolor="black",
        capsize=4,
    )
    for i, value in enumerate(accuracy):
        if np.isfinite(value):
            axis.text(i + 0.06, value, f"{value:.3f}", ha="left", va="bottom", fontsize=9)
    axis.set_xticks(x, names, rotation=20 if len(names) > 4 else 0)
    top = float(np.nanmax(high)) if np.isfinite(high).any() else 1.0
    axis.set_ylim(0, min(1.0, max(0.1, top * 1.2)))
    axis.set_ylabel("accuracy")
    axis.set_title(f"{evaluation['name']}: accuracy with bootstrap interval")
    figure.tight_layout()
    return figure


def bridge_figure_name(bridge: dict[str, Any]) -> str:
    return slug(bridge["name"])


def evaluation_figure_name(evaluation: dict[str, Any]) -> str:
    return f"eval_{slug(evaluation['name'])}"


def make_figures(data: dict[str, Any]) -> dict[str, ReportFigure]:
    """Every figure the collected data supports, by name."""
    thirds, d_mlp = data["layer_thirds"], data["provenance"]["d_mlp"]
    figures: list[ReportFigure] = []
    overlap = data["probe_overlap"]
    if overlap:
        figures.append(
            ReportFigure(
                "probe_overlap",
                "O(s,t) per layer and by third of depth",
                "Overlap neurons per layer (left axis: count, right axis: % of the layer's d_mlp "
                "neurons), shaded by third of depth; right: each pair's share per third.",
                _png(probe_overlap_figure(overlap, thirds, d_mlp)),
            )
        )
    similarity = data["similarity"]
    if similarity:
        figures.append(
            ReportFigure(
                "jaccard",
                "Jaccard similarity of the languages' active sets",
                "Jaccard of the top-rate active sets of two languages (FLORES); the diagonal is "
                "left out and the colour runs from the smallest to the largest value.",
                _png(jaccard_figure(similarity)),
            )
        )
        cosine, exponent = cosine_figure(similarity)
        figures.append(
            ReportFigure(
                "cosine",
                "Cosine over shared neurons (the reference's measure)",
                "The cosine of two languages' activation probabilities over the neurons both "
                "active sets hold sits close to 1 for every pair, so the figure shows 1 - cosine"
                + (f" in units of 1e{exponent}" if exponent else "")
                + " (brighter: more similar, as "
                "in the Jaccard map).",
                _png(cosine),
            )
        )
        figures.append(
            ReportFigure(
                "corpus_overlap",
                "Corpus overlaps per layer",
                "Shared active neurons A_a & A_b per layer: mean over every language pair, and the range.",
                _png(corpus_overlap_figure(similarity["pair_layers"], thirds, d_mlp)),
            )
        )
    spectrum = data["spectrum"]
    if spectrum and spectrum["files"].get("dendrogram_png"):
        figures.append(
            ReportFigure(
                "dendrogram",
                "Spectrum beside the taxonomy",
                f"Neuron-distance dendrogram (1 - {spectrum['measure']}) beside the taxonomy "
                "dendrogram (written by the spectrum analysis).",
                Path(spectrum["files"]["dendrogram_png"]).read_bytes(),
            )
        )
    for bridge in data["bridges"]:
        if bridge_figure_note(bridge) is not None:
            continue
        figures.append(
            ReportFigure(
                bridge_figure_name(bridge),
                f"Bridge selection {bridge['src']}->{bridge['tgt']}",
                "Score of each candidate per layer of the window (x: the model's layer ids; the "
                f"{'chosen bridge' if bridge.get('label', 'chosen') == 'chosen' else 'bridge ranked first'}"
                " alone in red)"
                + (
                    "; each bridge's window score with its bootstrap "
                    "interval; the bootstrap selection probabilities with the calibrated empirical "
                    "p-values."
                    if _has_probabilities(bridge)
                    else "; the selection has no bootstrap, so no intervals and no selection probabilities."
                ),
                _png(bridge_figure(bridge)),
            )
        )
    for evaluation in data["evaluations"]:
        if evaluation["conditions"] and evaluation_figure_note(evaluation) is None:
            figures.append(
                ReportFigure(
                    evaluation_figure_name(evaluation),
                    f"Evaluation {evaluation['name']}",
                    "Accuracy per condition; error bars: bootstrap interval.",
                    _png(evaluation_figure(evaluation)),
                )
            )
    return {figure.name: figure for figure in figures}


def figure_notes(data: dict[str, Any]) -> dict[str, str]:
    """The sentence shown in place of each figure that has nothing to draw, by figure name."""
    notes = {bridge_figure_name(b): bridge_figure_note(b) for b in data["bridges"]}
    notes |= {evaluation_figure_name(e): evaluation_figure_note(e) for e in data["evaluations"]}
    return {name: note for name, note in notes.items() if note is not None}
