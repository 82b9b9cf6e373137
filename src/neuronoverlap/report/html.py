"""The self-contained HTML page: inline CSS, figures as base64 `data:` PNGs, no external
resource of any kind (no script, font or style sheet from elsewhere)."""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any

from neuronoverlap.report.collect import NO_ANSWER, fmt, headline
from neuronoverlap.report.figures import ReportFigure, bridge_figure_name, evaluation_figure_name
from neuronoverlap.report.tables import Table, bridge_table_base, evaluation_table_base
from neuronoverlap.report.verdict import NOT_CHOSEN

#: Tables longer than this start folded (a click opens them).
FOLD_ROWS = 20

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
       margin: 0; color: #222; background: #fafafa; line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 0 24px 48px; background: #fff; }
header { padding: 20px 0 8px; border-bottom: 2px solid #4c78a8; }
h1 { margin: 0 0 4px; font-size: 1.6em; }
h2 { margin-top: 36px; padding-bottom: 4px; border-bottom: 1px solid #ddd; font-size: 1.3em; }
h3 { margin: 24px 0 8px; font-size: 1.05em; }
nav { margin: 10px 0 0; font-size: 0.92em; }
nav a { margin-right: 14px; color: #4c78a8; text-decoration: none; }
.meta { color: #555; font-size: 0.92em; }
.headline li { margin: 3px 0; }
.missing { background: #fff7e6; border-left: 4px solid #f0a020; padding: 8px 14px; margin: 16px 0; }
.missing li { margin: 2px 0; }
figure { margin: 16px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 4px; }
.table-wrap { overflow-x: auto; margin: 6px 0 18px; }
table { border-collapse: collapse; font-size: 0.86em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top;
         unicode-bidi: plaintext; }
th { background: #eef2f7; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafbfc; }
tr.highlight td { background: #fde2e1; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em;
          word-break: break-all; }
details { margin: 6px 0 18px; }
summary { cursor: pointer; color: #4c78a8; font-weight: 600; }
.note { color: #555; font-size: 0.9em; }
.chosen { color: #d62728; font-weight: 700; }
.first { color: #b86e00; font-weight: 700; }
.answer { border-left: 5px solid #4c78a8; background: #f3f7fb; padding: 10px 16px; margin: 14px 0; }
.answer.unsure { border-left-color: #f0a020; background: #fff7e6; }
.answer p { margin: 0 0 6px; font-size: 1.08em; }
.answer li { margin: 2px 0; }
.table-wrap { max-width: 100%; }
.table-wrap.wide td:first-child, .table-wrap.wide th:first-child { position: sticky; left: 0;
         background: #eef2f7; }
"""

#: Tables with more columns than this are marked wide: a note above them, their first column kept
#: in place when they scroll sideways (every table scrolls within the page when it must).
WIDE_COLUMNS = 16

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def visible(text: str) -> str:
    """Escape for HTML, showing control characters (a model may generate them) as \\xNN."""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return html.escape(shown).replace("\n", "\\n")


def _cell(value: Any, column: str, shown=fmt) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, (int, float)):
        align = "" if column == "value" else ' class="num"'
        return f"<td{align}>{html.escape(shown(value))}</td>"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        return f'<td class="code">{visible(text)}</td>'
    text = str(value)
    code = "sha256" in column or re.fullmatch(r"[0-9a-f]{32,}", text) is not None
    return f'<td class="code">{visible(text)}</td>' if code else f"<td>{visible(text)}</td>"


def render_table(table: Table, csv_link: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "\n".join(
        f"<tr{' class=highlight' if i in table.highlight else ''}>"
        + "".join(_cell(v, c, table.formatter(row, c)) for v, c in zip(row, table.columns, strict=True))
        + "</tr>"
        for i, row in enumerate(table.rows)
    )
    link = f' <span class="note">(<a href="{html.escape(csv_link)}">CSV</a>)</span>' if csv_link else ""
    wide = " wide" if len(table.columns) > WIDE_COLUMNS else ""
    hint = (
        (
            f'<p class="note">A wide table ({len(table.columns)} columns): it scrolls sideways '
            "within the page, its first column stays in place.</p>"
        )
        if wide
        else ""
    )
    content = (
        f'{hint}<div class="table-wrap{wide}"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )
    if table.note:
        content = f'<p class="note">{html.escape(table.note)}</p>' + content
    fold = len(table.rows) > FOLD_ROWS if table.fold is None else table.fold
    if fold:
        return (
            f"<details><summary>{html.escape(table.title)} ({len(table.rows)} rows)"
            f"</summary>{link}{content}</details>"
        )
    return f"<h3>{html.escape(table.title)}{link}</h3>{content}"


def render_figure(figure: ReportFigure) -> str:
    encoded = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure id="fig-{html.escape(figure.name)}"><h3>{html.escape(figure.title)}</h3>'
        f'<img alt="{html.escape(figure.title)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{html.escape(figure.caption)} "
        f'(<a href="figures/{html.escape(figure.name)}.png">PNG</a>)</figcaption></figure>'
    )


class _Page:
    """Collects the page's parts; `table(name)` and `figure(name)` skip what is absent."""

    def __init__(self, tables: dict[str, Table], figures: dict[str, ReportFigure], notes: dict[str, str]):
        self.tables, self.figures, self.notes, self.parts = tables, figures, notes, []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def table(self, name: str) -> None:
        if name in self.tables:
            self.add(render_table(self.tables[name], f"tables/{name}.csv"))

    def figure(self, name: str) -> None:
        if name in self.figures:
            self.add(render_figure(self.figures[name]))
        elif name in self.notes:
            self.add(f'<p class="note empty-figure">{html.escape(self.notes[name])}</p>')

    def section(self, anchor: str, title: str, empty: str | None = None) -> None:
        self.add(f'<section id="{anchor}"><h2>{html.escape(title)}</h2>')
        if empty:
            self.add(f'<p class="note">{html.escape(empty)}</p>')

    def end(self) -> None:
        self.add("</section>")


SECTIONS = (
    ("answer", "Answer"),
    ("summary", "Summary"),
    ("provenance", "Provenance"),
    ("probes", "Probe sets"),
    ("overlap", "Layer-wise overlap"),
    ("languages", "Language similarity"),
    ("bridges", "Bridge selection"),
    ("evaluation", "Evaluation"),
    ("interventions", "Do these neurons matter?"),
    ("neurons", "Neuron cards"),
)


def render_html(data: dict[str, Any], tables: dict[str, Table], figures: dict[str, ReportFigure]) -> str:
    """The whole page as one string."""
    prov = data["provenance"]
    page = _Page(tables, figures, data.get("figure_notes") or {})
    title = f"neuronoverlap report: {prov['model_name']}"
    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in SECTIONS)
    page.add(
        f"<header><h1>{html.escape(title)}</h1><div class=meta>model fingerprint "
        f"<code>{html.escape(prov['model_fingerprint'])}</code> · store "
        f"<code>{html.escape(prov['store'])}</code> · generated "
        f"{html.escape(data['report']['generated'])} by neuronoverlap "
        f"{html.escape(data['report']['toolkit_version'])}</div><nav>{nav}</nav></header>"
    )

    page.section("answer", "Answer")
    page.add(render_answer(data))
    page.end()

    page.section("summary", "Summary")
    page.add(
        "<ul class=headline>" + "".join(f"<li>{visible(line)}</li>" for line in headline(data)) + "</ul>"
    )
    if data["missing"]:
        page.add(
            '<div class="missing"><strong>Not in this store</strong><ul>'
            + "".join(f"<li>{_with_code(note)}</li>" for note in data["missing"])
            + "</ul></div>"
        )
    page.end()

    page.section("provenance", "Provenance")
    for name in ("provenance", "model_config", "data_sources"):
        page.table(name)
    page.end()

    page.section("probes", "Probe sets", None if data["probe_sets"] else "No probe sets in this store.")
    for name in ("probe_sets", "probe_examples", "probe_parameters"):
        page.table(name)
    page.end()

    page.section(
        "overlap",
        "Layer-wise overlap O(s,t)",
        None if data["probe_overlap"] else "No pair with both directions among the probe sets.",
    )
    if data["probe_overlap"]:
        page.add(
            f'<p class="note">{html.escape(data["probe_overlap"]["definition"])}; top rate '
            f"{fmt(data['report']['parameters']['top_rate'])}.</p>"
        )
    page.figure("probe_overlap")
    for name in ("probe_overlap_thirds", "probe_overlap_layers"):
        page.table(name)
    page.end()

    page.section(
        "languages",
        "Language similarity and the spectrum",
        None if data["similarity"] else "Fewer than two corpora in this store.",
    )
    page.table("corpora")
    page.figure("jaccard")
    page.figure("cosine")
    page.figure("dendrogram")
    page.table("spectrum")
    for name in ("spectrum_third_intervals", "dendrogram_support", "spectrum_pair_intervals"):
        page.table(name)
    page.figure("corpus_overlap")
    for name in (
        "corpus_overlap_layers",
        "similarity_jaccard",
        "similarity_cosine",
        "similarity_overlap",
        "corpus_parameters",
    ):
        page.table(name)
    page.end()

    page.section(
        "bridges", "Bridge selection", None if data["bridges"] else "No bridge selection in this store."
    )
    for bridge in data["bridges"]:
        base = bridge_table_base(bridge)
        choice = bridge.get("choice")
        chosen = choice not in NOT_CHOSEN
        page.add(
            f"<p>{'Chosen bridge' if chosen else 'Ranked first'} for {html.escape(str(bridge['src']))}"
            f"&rarr;{html.escape(str(bridge['tgt']))}: <span class={'chosen' if chosen else 'first'}>"
            f"{html.escape(str(bridge['chosen']))}</span>"
            + ("" if chosen else f" ({html.escape(NOT_CHOSEN[choice])}: see the Answer)")
            + "</p>"
        )
        page.figure(bridge_figure_name(bridge))
        for name in (base, f"{base}_layers", f"{base}_parameters"):
            page.table(name)
    page.end()

    page.section(
        "evaluation", "Evaluation", None if data["evaluations"] else "No evaluation results in this store."
    )
    for evaluation in data["evaluations"]:
        base = evaluation_table_base(evaluation)
        page.figure(evaluation_figure_name(evaluation))
        for name in (
            f"{base}_conditions",
            f"{base}_comparisons",
            f"{base}_oracle",
            f"{base}_diagnostics",
            base,
        ):
            page.table(name)
    page.end()

    page.section(
        "interventions",
        "Do these neurons matter?",
        None
        if data.get("interventions")
        else "No intervention results in this store: `neuronoverlap intervene perplexity|bli` runs them.",
    )
    for name in tables:
        if name.startswith("intervention_"):
            page.table(name)
    page.end()

    from neuronoverlap.report.cards import render_cards  # issue 29: its own module

    page.section("neurons", "Neuron cards")
    page.add(render_cards(data.get("neuron_cards")))
    page.end()

    others = [name for name in tables if name.startswith("result_") or name == "neuron_sets"]
    if others:
        page.section("other", "Other contents of the store")
        for name in others:
            page.table(name)
        page.end()

    body = "\n".join(page.parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def render_answer(data: dict[str, Any]) -> str:
    """The verdict of each bridge selection (`report.verdict`): headline, then its evidence."""
    verdicts = data.get("verdicts") or []
    if not verdicts:
        return f'<div class="answer unsure"><p>{_with_code(NO_ANSWER)}</p></div>'
    parts = []
    for verdict in verdicts:
        sure = verdict["choice"] in ("clear", "one candidate")
        lines = "".join(f"<li>{_with_code(line)}</li>" for line in verdict["lines"])
        parts.append(
            f'<div class="answer{"" if sure else " unsure"}"><p><strong>'
            f"{html.escape(verdict['headline'])}</strong></p><ul>{lines}</ul></div>"
        )
    return "".join(parts)


def _with_code(note: str) -> str:
    """Escape a note and show `backticked` commands as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(note))
