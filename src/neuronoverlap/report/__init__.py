"""The report: one self-contained HTML page, `summary.md`, `report.json`, a CSV per table and a
PNG per figure, from whatever a store holds. See docs/report.md.

    from neuronoverlap.report import write_report
    outputs = write_report("store/run.h5", "out/report")
    outputs.html                                      # out/report/report.html

Modules: `collect` (store -> plain dict), `verdict` (the answer in sentences: which bridge, how
sure, did it help), `tables`, `figures`, `html`, `markdown`, `command` (the `neuronoverlap
report` subcommand).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.options import DEFAULT_TOP_RATE, SPECTRUM_MEASURES

#: What the spectrum may cluster on (`neuronoverlap.analyses.write_spectrum_outputs`).


@dataclass(frozen=True)
class ReportOutputs:
    """The files `write_report` wrote, and what the store lacked."""

    out_dir: Path
    html: Path
    markdown: Path
    json: Path
    figures: dict[str, Path]
    tables: dict[str, Path]
    spectrum: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def paths(self) -> list[Path]:
        """Every file written, the page first."""
        return [
            self.html,
            self.markdown,
            self.json,
            *self.figures.values(),
            *self.tables.values(),
            *self.spectrum.values(),
        ]


def _check(top_rate: float, spectrum_measure: str, permutations: int, n_examples: int) -> None:
    if not 0 < top_rate < 1:
        raise InputError(f"top rate must be in (0, 1), got {top_rate}")
    if spectrum_measure not in SPECTRUM_MEASURES:
        raise InputError(
            f"unknown spectrum measure {spectrum_measure!r}; use one of {', '.join(SPECTRUM_MEASURES)}"
        )
    if permutations < 1:
        raise InputError(f"Mantel permutations must be at least 1, got {permutations}")
    if n_examples < 0:
        raise InputError(f"examples per probe set must be >= 0, got {n_examples}")


def _remove_previous_outputs(out: Path) -> None:
    """Delete the files an earlier report wrote into `out` (figures, tables, spectrum), so that
    nothing stale is left beside the new report."""
    for folder, patterns in (
        ("figures", ("*.png",)),
        ("tables", ("*.csv",)),
        ("spectrum", ("*.png", "*.csv", "*.json")),
    ):
        for pattern in patterns:
            for path in (out / folder).glob(pattern):
                path.unlink()


def write_report(
    store_path: str | Path,
    out_dir: str | Path,
    top_rate: float = DEFAULT_TOP_RATE,
    spectrum_measure: str = "jaccard",
    permutations: int = 999,
    seed: int = 0,
    n_examples: int = 3,
    log: Callable[[str], None] | None = None,
    bootstrap: int = 0,
    agnostic_share: float | None = None,
) -> ReportOutputs:
    """Write the report of the store at `store_path` into `out_dir`.

    `top_rate`: active-set share of neurons (probe overlaps and corpus active sets);
    `spectrum_measure`: the similarity the spectrum clusters on ("jaccard", "cosine", "cka");
    `permutations`, `seed`: the Mantel test; `n_examples`: prompts shown per probe set;
    `log`: called with a line per step; `bootstrap`: resamples for the spectrum's intervals
    (needs per-sentence statistics, docs/analyses.md); `agnostic_share`: the language-agnostic
    rule (analyses/agnostic.py) for the probe overlaps O(s,t), the corpus active sets and the
    spectrum, recorded with the report's parameters (None: every neuron). A missing or damaged
    store is an `InputError`.
    """
    # Imported here: matplotlib and scipy take a second or two, and `neuronoverlap --help`
    # imports this package.
    from neuronoverlap.report.collect import collect, headline, verdicts
    from neuronoverlap.report.figures import figure_notes, make_figures
    from neuronoverlap.report.html import render_html
    from neuronoverlap.report.markdown import render_markdown
    from neuronoverlap.report.tables import build_tables

    _check(top_rate, spectrum_measure, permutations, n_examples)
    if bootstrap < 0:
        raise InputError(f"bootstrap resamples must be >= 0, got {bootstrap}")
    from neuronoverlap.analyses.agnostic import check_share

    agnostic_share = check_share(agnostic_share)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    _remove_previous_outputs(out)
    data = collect(
        store_path,
        out / "spectrum",
        top_rate=top_rate,
        spectrum_measure=spectrum_measure,
        permutations=permutations,
        seed=seed,
        n_examples=n_examples,
        log=log,
        bootstrap=bootstrap,
        agnostic_share=agnostic_share,
    )
    from neuronoverlap.report.cards import cards_data  # issue 29: neuron cards, own module

    data["neuron_cards"] = cards_data(store_path)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    if log:
        log("figures and tables")
    data["verdicts"] = verdicts(data)
    data["figure_notes"] = figure_notes(data)
    figures = make_figures(data)
    tables = build_tables(data)
    figure_paths = {name: figure.save(out / "figures") for name, figure in figures.items()}
    table_paths = {name: table.write_csv(out / "tables" / f"{name}.csv") for name, table in tables.items()}
    spectrum = {k: Path(v) for k, v in (data["spectrum"] or {}).get("files", {}).items()}

    data["headline"] = headline(data)
    data["files"] = {
        "html": "report.html",
        "markdown": "summary.md",
        "figures": {name: f"figures/{path.name}" for name, path in figure_paths.items()},
        "tables": {name: f"tables/{path.name}" for name, path in table_paths.items()},
        "spectrum": {k: str(p.relative_to(out)) for k, p in spectrum.items()},
    }
    html_path = out / "report.html"
    html_path.write_text(render_html(data, tables, figures), encoding="utf-8")
    markdown_path = out / "summary.md"
    markdown_path.write_text(render_markdown(data, tables, figures), encoding="utf-8")
    json_path = out / "report.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return ReportOutputs(
        out, html_path, markdown_path, json_path, figure_paths, table_paths, spectrum, list(data["missing"])
    )


__all__ = ["SPECTRUM_MEASURES", "ReportOutputs", "write_report"]
