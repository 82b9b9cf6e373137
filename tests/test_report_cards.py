"""Neuron cards in the report (issue 29): a card per top neuron of the overlap and bridge sets,
with contexts in the scripts of all 15 languages (Arabic and Hebrew right to left, CJK), and
(where a chromium binary exists) nothing running off a 1366 px page."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from neuronoverlap.languages import known_codes
from neuronoverlap.options import CorpusOptions, ReportOptions, SpectrumOptions
from neuronoverlap.report import write_report
from neuronoverlap.report.cards import cards_data, render_cards
from neuronoverlap.sets import NeuronSet
from neuronoverlap.store import Store, StoreWriter
from test_report_page import LAPTOP, _chromium, laptop_layout


@pytest.fixture(scope="module")
def all_languages(tiny_llama, tmp_path_factory):
    from neuronoverlap.pipeline import record_corpora

    path = tmp_path_factory.mktemp("cards") / "run.h5"
    langs = list(known_codes())
    assert len(langs) == 15
    record_corpora(path, langs, tiny_llama, CorpusOptions(n_sentences=6, top_k=3), progress=False)
    mask = np.zeros((4, 256), dtype=bool)
    mask[1, [3, 77, 200]] = mask[2, [5, 9]] = True
    with StoreWriter.for_existing(path) as writer:
        writer.put_sets({"overlap-ar-he": NeuronSet(mask, "planted")})
    return path


def test_cards_show_every_language_and_script(all_languages):
    data = cards_data(Store(all_languages))
    assert data["sets"] == ["overlap-ar-he"] and len(data["neurons"]) == 4
    assert len(data["langs"]) == 15
    page = render_cards(data)
    assert page.count('class="card"') == 4 and page.count("<mark>") == 4 * 15 * 3
    assert 'dir="auto"' in page and "<bdi>" in page
    for script in ("\u0600-\u06ff", "\u0590-\u05ff", "\u4e00-\u9fff", "\u3040-\u30ff"):  # ar he zh ja
        assert re.search(f"[{script}]", page), script
    assert "http" not in page and "<script" not in page
    card = data["neurons"][0]
    assert set(card["activation_probability"]) == set(known_codes()) and card["sets"] == ["overlap-ar-he"]


def test_the_report_page_holds_the_cards(all_languages, tmp_path):
    out = write_report(all_languages, tmp_path / "report", permutations=9)
    page = out.html.read_text(encoding="utf-8")
    assert '<section id="neurons"><h2>Neuron cards</h2>' in page and page.count('class="card"') == 4
    assert json.loads(out.json.read_text(encoding="utf-8"))["neuron_cards"]["kind"] == "neuron-cards"


def test_the_cards_are_read_through_the_reports_store(all_languages, tmp_path, monkeypatch):
    """The report reads its store through the one `Store` its shelf holds: the cards open no
    second one beside it."""
    from neuronoverlap.pipeline import report
    from neuronoverlap.store import reader

    opened = []
    real = reader.Store.__init__

    def counted(self, path):
        opened.append(path)
        real(self, path)

    monkeypatch.setattr(reader.Store, "__init__", counted)
    out = report(
        all_languages, tmp_path / "report", options=ReportOptions(spectrum=SpectrumOptions(n_permutations=9))
    )
    assert len(opened) == 1 and '<section id="neurons"><h2>Neuron cards</h2>' in out.html.read_text(
        encoding="utf-8"
    )


def test_a_store_without_contexts_says_why_there_are_no_cards(tiny_llama, tmp_path):
    from neuronoverlap.probes import flores_sentences, open_writer, record_corpus

    path = tmp_path / "run.h5"
    sentences, params = flores_sentences("de", 3)
    with open_writer(path, tiny_llama) as writer:
        record_corpus(tiny_llama, writer, "de", sentences, params, progress=False, top_k=None)
    assert cards_data(Store(path)) is None
    assert "No neuron cards" in render_cards(None)


PROBE = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const w = window.innerWidth, off = [];
  document.querySelectorAll('#neurons *').forEach(e => {
    const r = e.getBoundingClientRect();
    if (r.right > w + 1 || e.scrollWidth > e.clientWidth + 1 && e.classList.contains('card'))
      off.push(e.tagName + ' ' + (e.textContent || '').slice(0, 40));
  });
  const p = document.createElement('pre'); p.id = 'probe';
  p.textContent = JSON.stringify({width: w, scrollWidth: document.documentElement.scrollWidth, off});
  document.body.appendChild(p);
});
</script>"""


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary")
def test_cards_fit_a_laptop_screen_in_chromium(all_languages, tmp_path):
    """Headless chromium at 1366 px, every fold opened: no card runs past its box or the window."""
    out = write_report(all_languages, tmp_path / "report", permutations=9)
    found, shot = laptop_layout(out.html, PROBE, tmp_path)
    assert found["width"] == LAPTOP[0]
    assert found["scrollWidth"] <= found["width"] and found["off"] == []
    assert shot.read_bytes().startswith(b"\x89PNG")
