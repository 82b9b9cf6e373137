"""The report page leads with the answer, says why a figure is missing, keeps wide tables
within the page; and (where a chromium binary exists) renders at a laptop width with nothing
running off the page."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from neuronoverlap.bridge import select_from_activations
from neuronoverlap.report import write_report
from neuronoverlap.report.html import WIDE_COLUMNS
from neuronoverlap.sets import NeuronSet
from neuronoverlap.store import StoreWriter
from test_report_verdict import bli_summary

LAPTOP = (1366, 800)


def _tied_selection() -> dict:
    """A real selection on planted data: it and es carry the same dependence, pt none."""
    rng = np.random.default_rng(101)
    n, d, n_o = 48, 80, 6
    acts = rng.normal(size=(n, d))
    latent = rng.normal(size=n)
    acts[:, :n_o] = latent[:, None] + 0.3 * rng.normal(size=(n, n_o))
    bridges = {"it": np.arange(10, 14), "es": np.arange(20, 24), "pt": np.arange(30, 34)}
    for cols in list(bridges.values())[:2]:
        acts[:, cols] = latent[:, None] ** 2 + 0.4 * rng.normal(size=(n, len(cols)))
    shape = (1, d)
    overlap = NeuronSet.from_indices([(0, j) for j in range(n_o)], shape)
    sets = {b: NeuronSet.from_indices([(0, int(j)) for j in cols], shape) for b, cols in bridges.items()}
    result = select_from_activations(
        {0: acts}, overlap, sets, src="de", tgt="fr", n_random=99, n_bootstrap=100, seed=1
    )
    return json.loads(json.dumps(result.to_dict()))


@pytest.fixture(scope="module")
def report(tiny_store_template, tmp_path_factory):
    """The tiny store with a tied three-way selection de-fr and a BLI result of all zeros."""
    folder = tmp_path_factory.mktemp("page")
    store = folder / "run.h5"
    shutil.copy(tiny_store_template, store)
    selection = _tied_selection()
    zeros = np.zeros(40, dtype=bool)
    with StoreWriter.for_existing(store) as writer:
        writer.put_json("results", "bridge-de-fr", selection)
        writer.put_json(
            "results",
            "bli-de-fr",
            bli_summary(zeros, zeros, bridge=selection["chosen"], src="de", tgt="fr").to_dict(),
        )
    return write_report(store, folder / "report", permutations=19)


@pytest.fixture(scope="module")
def page(report) -> str:
    return report.html.read_text(encoding="utf-8")


def test_the_answer_leads_the_page(report, page):
    verdict = json.loads(report.json.read_text(encoding="utf-8"))["verdicts"][0]
    assert verdict["choice"] == "unclear" and verdict["effect"] == "cannot tell"
    body = page.index("<body>")
    where = page.index(html.escape(verdict["headline"]))
    assert where - body < 2500  # after the title, the meta line and the navigation only
    assert where < page.index("<table") and where < page.index('<section id="summary"')
    for line in verdict["lines"]:
        assert page.index(html.escape(line).replace("`", "")[:40]) < page.index("<table")
    assert "No clear choice of bridge for de-&gt;fr" in page[: where + 200]
    assert "BLI cannot tell: 0.000 zero-shot and 0.000 through" in verdict["headline"]


def test_summary_md_leads_with_the_answer(report):
    text = report.markdown.read_text(encoding="utf-8")
    verdict = json.loads(report.json.read_text(encoding="utf-8"))["verdicts"][0]
    assert text.index("## Answer") < text.index(f"**{verdict['headline']}**") < text.index("## Headline")


def test_an_all_zero_evaluation_has_a_sentence_and_no_figure(report, page):
    assert "eval_bli-de-fr" not in report.figures
    assert not (report.out_dir / "figures" / "eval_bli-de-fr.png").exists()
    sentence = "No figure for bli-de-fr: every condition (zero-shot, bridge:"
    assert sentence in page and 'id="fig-eval_bli-de-fr"' not in page
    assert sentence in report.markdown.read_text(encoding="utf-8")
    assert page.index(sentence) > page.index('<section id="evaluation"')


def test_every_table_sits_in_a_scrolling_wrapper(page):
    assert re.search(r"\.table-wrap \{[^}]*overflow-x: auto", page)
    tables = page.count("<table>")
    assert tables > 5 and page.count('<div class="table-wrap') == tables
    assert all(
        chunk.endswith('<div class="table-wrap">') or chunk.endswith('<div class="table-wrap wide">')
        for chunk in page.split("<table>")[:-1]
    )
    for head in re.findall(r'<div class="table-wrap( wide)?"><table><thead><tr>(.*?)</tr>', page):
        assert (head[0] == " wide") == (head[1].count("<th>") > WIDE_COLUMNS)


def test_no_empty_probability_panel_without_a_bootstrap(tiny_store_template, tmp_path):
    """The template's own selection (one candidate, as select-bridge stored it)."""
    out = write_report(tiny_store_template, tmp_path / "report", permutations=19)
    data = json.loads(out.json.read_text(encoding="utf-8"))
    verdict = data["verdicts"][0]
    assert verdict["choice"] == "one candidate" and "the only candidate" in verdict["headline"]
    assert verdict["effect"] == "not evaluated"


PROBE = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const w = window.innerWidth, off = [];
  document.querySelectorAll('body *').forEach(e => {
    if (e.closest('.table-wrap') && !e.classList.contains('table-wrap')) return;
    const r = e.getBoundingClientRect();
    if (r.right > w + 1) off.push(e.tagName + ' ' + (e.textContent || '').slice(0, 40));
  });
  const p = document.createElement('pre'); p.id = 'probe';
  p.textContent = JSON.stringify({width: w, scrollWidth: document.documentElement.scrollWidth, off});
  document.body.appendChild(p);
});
</script>"""


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def laptop_layout(page: Path, probe: str, folder: Path) -> tuple[dict, Path]:
    """Headless chromium at `LAPTOP` size on `page`: what the `probe` script found (its JSON in
    <pre id="probe">) and a screenshot of the page as it is."""
    with_probe = folder / "probe.html"
    with_probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8"
    )
    common = [
        _chromium(),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        f"--user-data-dir={folder / 'profile'}",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", with_probe.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    found = json.loads(html.unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom).group(1)))
    shot = folder / f"{page.stem}.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True
    )
    return found, shot


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary")
def test_the_page_fits_a_laptop_screen_in_chromium(report, tmp_path):
    """Headless chromium at 1366 px, every folded table opened: the page does not scroll
    sideways and nothing but the tables' own scrolling content runs past the window."""
    found, shot = laptop_layout(report.html, PROBE, tmp_path)
    assert found["width"] == LAPTOP[0]
    assert found["scrollWidth"] <= found["width"] and found["off"] == []
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_the_ranking_table_shows_each_bridge_interval(report):
    import csv

    data = json.loads(report.json.read_text(encoding="utf-8"))
    stored = data["bridges"][0]["document"]["bootstrap"]["intervals"]
    with report.tables["bridge_de_fr"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["bridge"]: [float(r["interval low"]), float(r["interval high"])] for r in rows} == stored


def test_a_wide_table_is_marked_and_a_narrow_one_is_not():
    from neuronoverlap.report.html import render_table
    from neuronoverlap.report.tables import Table

    wide = render_table(
        Table("w", "Wide", [f"c{i}" for i in range(WIDE_COLUMNS + 1)], [list(range(WIDE_COLUMNS + 1))])
    )
    narrow = render_table(Table("n", "Narrow", ["a", "b"], [[1, 2]]))
    assert '<div class="table-wrap wide">' in wide and f"A wide table ({WIDE_COLUMNS + 1} columns)" in wide
    assert '<div class="table-wrap">' in narrow and "A wide table" not in narrow


def _strings(value, skip=("document",)):
    """Every string value of a report.json subtree, leaving out the stored result documents."""
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in skip for s in _strings(v, skip)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, skip)]
    return [value] if isinstance(value, str) else []


def test_no_clear_choice_is_said_everywhere_and_nothing_calls_a_bridge_chosen(report, page):
    """Issue 30: the Answer said "No clear choice" while the Bridge selection section said
    "Chosen bridge for zh->ja: fr" in red and the table marked fr "chosen"."""
    import csv

    data = json.loads(report.json.read_text(encoding="utf-8"))
    first = data["verdicts"][0]["chosen"]
    assert data["verdicts"][0]["choice"] == "unclear" and data["verdicts"][0]["label"] == "ranked first"
    assert data["bridges"][0]["choice"] == "unclear" and data["bridges"][0]["label"] == "ranked first"
    text = re.sub(r"<[^>]+>", " ", page[page.index("<body>") :])  # what a reader sees
    assert "chosen" not in text.lower()
    assert f"Ranked first for de&rarr;fr: <span class=first>{first}</span> (no clear choice" in page
    markdown = report.markdown.read_text(encoding="utf-8")
    assert "chosen" not in markdown.lower()
    assert f"## Bridge for de->fr: {first} ranked first (no clear choice)" in markdown
    assert not [s for s in _strings(data) if "chosen" in s.lower()]
    with report.tables["bridge_de_fr"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["choice"] for r in rows] == ["ranked first", "", ""]


def test_the_page_shows_numbers_by_the_one_rule(report, page):
    from neuronoverlap.numbers import decimals, fixed, permutation_floor, probability, pvalue

    data = json.loads(report.json.read_text(encoding="utf-8"))
    document = data["bridges"][0]["document"]
    rows = data["bridges"][0]["rows"]
    places = decimals(*(r["interval"] for r in rows))
    floor = permutation_floor(document["parameters"]["n_random"])
    table = page[page.index('<section id="bridges"') :]
    table = table[: table.index("</table>")]
    for r in rows:
        cells = [fixed(r["score"], places), *(fixed(x, places) for x in r["interval"])]
        cells += [pvalue(r["pvalue"], floor=floor), probability(r["probability"])]
        shown = "".join(f'<td class="num">{html.escape(c)}</td>' for c in cells)
        assert shown in table, (r["bridge"], cells)
    assert data["bridges"][0]["rows"][0]["score"] == document["scores"][rows[0]["bridge"]]  # JSON: full
