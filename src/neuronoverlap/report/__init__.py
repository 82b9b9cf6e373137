"""The report: one self-contained HTML page, `summary.md`, `report.json`, a CSV per table and a
PNG per figure, from whatever a store holds. See docs/report.md.

    from neuronoverlap.report import write_report
    outputs = write_report("store/run.h5", "out/report")
    outputs.html                                      # out/report/report.html

The report only presents: `pipeline.report` reads the store's typed results and computes what it
lacks (`pipeline.report.gather`), then `render_report` lays them out. Modules: `collect` (results
-> plain dict), `holdings` (what the store holds: provenance, probe sets, corpora), `verdict`
(the answer in sentences: which bridge, how sure, did it help), `tables`, `figures`, `html`,
`markdown`; the `neuronoverlap report` subcommand is cli/report.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.options import (
    DEFAULT_MANTEL_PERMUTATIONS,
    DEFAULT_SPECTRUM_MEASURE,
    DEFAULT_TOP_RATE,
    SPECTRUM_MEASURES,
    ReportOptions,
    SpectrumOptions,
)


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


def prepare_out(out_dir: str | Path) -> Path:
    """The report's folder, emptied of an earlier report's figures, tables and spectrum files;
    a file in its place is an `InputError`."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    _remove_previous_outputs(out)
    return out


def render_report(shelf, out: Path, log: Callable[[str], None] | None = None) -> ReportOutputs:
    """Lay out a `pipeline.report.ReportShelf` as the page, summary.md, report.json, tables and
    figures in `out` (prepared by `prepare_out`)."""
    # Imported here: matplotlib takes a second or two, and `neuronoverlap --help` imports this package.
    from neuronoverlap.report.collect import collect, headline, verdicts
    from neuronoverlap.report.figures import figure_notes, make_figures
    from neuronoverlap.report.html import render_html
    from neuronoverlap.report.markdown import render_markdown
    from neuronoverlap.report.tables import build_tables

    data = collect(shelf)
    from neuronoverlap.report.cards import cards_data  # issue 29: neuron cards, own module

    data["neuron_cards"] = cards_data(shelf.store, shelf.selections.values())
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    if log:
        log("figures and tables")
    data["verdicts"] = verdicts(shelf)
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


def write_report(
    store_path: str | Path,
    out_dir: str | Path,
    top_rate: float = DEFAULT_TOP_RATE,
    spectrum_measure: str = DEFAULT_SPECTRUM_MEASURE,
    permutations: int = DEFAULT_MANTEL_PERMUTATIONS,
    seed: int = 0,
    n_examples: int = 3,
    log: Callable[[str], None] | None = None,
    bootstrap: int = 0,
    agnostic_share: float | None = None,
) -> ReportOutputs:
    """Write the report of the store at `store_path` into `out_dir` (`pipeline.report` with the
    `ReportOptions` of these values).

    `top_rate`: active-set share of neurons (probe overlaps and corpus active sets);
    `spectrum_measure`: the similarity the spectrum clusters on ("jaccard", "cosine", "cka");
    `permutations`, `seed`: the Mantel test; `n_examples`: prompts shown per probe set;
    `log`: called with a line per step; `bootstrap`: resamples for the spectrum's intervals
    (needs per-sentence statistics, docs/analyses.md); `agnostic_share`: the language-agnostic
    rule (analyses/agnostic.py) for the probe overlaps O(s,t), the corpus active sets and the
    spectrum, recorded with the report's parameters (None: every neuron). A missing or damaged
    store is an `InputError`.
    """
    from neuronoverlap.pipeline.report import report

    rule = SpectrumOptions(
        top_rate=top_rate,
        measure=spectrum_measure,
        n_permutations=permutations,
        seed=seed,
        agnostic_share=agnostic_share,
    )
    options = ReportOptions(spectrum=rule, bootstrap=bootstrap, n_examples=n_examples)
    return report(store_path, out_dir, options=options, log=log)


__all__ = ["SPECTRUM_MEASURES", "ReportOutputs", "prepare_out", "render_report", "write_report"]
