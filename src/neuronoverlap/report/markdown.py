"""`summary.md`: the headline numbers, the chosen bridges, what is missing, and links to the
figures (PNG) and tables (CSV) beside it."""

from __future__ import annotations

from typing import Any

from neuronoverlap.report.collect import NO_ANSWER, fmt, headline
from neuronoverlap.report.figures import ReportFigure, evaluation_figure_name
from neuronoverlap.report.tables import Table, bridge_table_base, evaluation_table_base
from neuronoverlap.report.verdict import first_place_note


def _cell(value: Any, shown=fmt) -> str:
    if value is None:
        return ""
    text = shown(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else fmt(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> list[str]:
    lines = [
        "| " + " | ".join(_cell(c) for c in table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    for i, row in enumerate(table.rows):
        cells = [_cell(v, table.formatter(row, c)) for v, c in zip(row, table.columns, strict=True)]
        if i in table.highlight:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(data: dict[str, Any], tables: dict[str, Table], figures: dict[str, ReportFigure]) -> str:
    prov = data["provenance"]
    lines = [
        f"# neuronoverlap report: {prov['model_name']}",
        "",
        f"- model fingerprint: `{prov['model_fingerprint']}`",
        f"- store: `{prov['store']}`",
        f"- generated: {data['report']['generated']} (neuronoverlap {data['report']['toolkit_version']})",
        "- parameters: " + ", ".join(f"{k} = {v}" for k, v in data["report"]["parameters"].items()),
        "",
        "## Answer",
        "",
    ]
    for verdict in data.get("verdicts") or []:
        lines += [f"**{verdict['headline']}**", ""] + [f"- {line}" for line in verdict["lines"]] + [""]
    if not data.get("verdicts"):
        lines += [NO_ANSWER, ""]
    lines += ["## Headline", ""]
    lines += [f"- {line}" for line in headline(data)]

    overlap = data["probe_overlap"]
    if overlap:
        lines += ["", "## Where the overlap neurons O(s,t) sit", ""]
        lines += markdown_table(tables["probe_overlap_thirds"])
    if data["spectrum"]:
        lines += ["", "## Language spectrum against the taxonomy", ""]
        lines += markdown_table(tables["spectrum"])
        for name in ("spectrum_third_intervals", "dendrogram_support"):
            if name in tables:
                lines += ["", *markdown_table(tables[name])]
    for bridge in data["bridges"]:
        name = bridge_table_base(bridge)
        lines += [
            "",
            f"## Bridge for {bridge['src']}->{bridge['tgt']}: "
            f"{bridge['chosen']}{first_place_note(bridge.get('choice'))}",
            "",
        ]
        lines += markdown_table(tables[name])
    notes = data.get("figure_notes") or {}
    for evaluation in data["evaluations"]:
        name = f"{evaluation_table_base(evaluation)}_conditions"
        if name in tables:
            lines += ["", f"## Evaluation {evaluation['name']}", ""]
            lines += markdown_table(tables[name])
            note = notes.get(evaluation_figure_name(evaluation))
            if note:
                lines += ["", note]
    shown = [name for name in tables if name.startswith("intervention_")]
    if shown:
        lines += ["", "## Do these neurons matter?"]
        for name in shown:
            lines += ["", f"**{tables[name].title}**", "", *markdown_table(tables[name])]
            if tables[name].note:
                lines += ["", tables[name].note]
    if data["missing"]:
        lines += ["", "## Not in this store", ""] + [f"- {note}" for note in data["missing"]]

    lines += [
        "",
        "## Files",
        "",
        "- [report.html](report.html): the full report (figures embedded)",
        "- [report.json](report.json): everything collected",
    ]
    lines += [
        f"- [figures/{name}.png](figures/{name}.png): {figure.title}" for name, figure in figures.items()
    ]
    lines += [f"- [tables/{name}.csv](tables/{name}.csv): {table.title}" for name, table in tables.items()]
    if data["spectrum"]:
        lines.append(
            "- [spectrum/](spectrum/): the spectrum analysis' own files (similarity "
            "matrices, layer-wise tables, dendrogram.png, mantel.json)"
        )
    return "\n".join(lines) + "\n"
