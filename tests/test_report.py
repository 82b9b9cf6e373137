"""The report: a real store from the tiny model (probe sets, corpora, a bridge selection, an
evaluation result), then the HTML page, summary.md, report.json, CSVs and PNGs checked against
what the store holds; partial stores and bad inputs."""

from __future__ import annotations

import argparse
import base64
import csv
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuronoverlap.cli import main
from neuronoverlap.cli.report import add_parsers as add_report_parser
from neuronoverlap.cli.report import run_report as cmd_report
from neuronoverlap.errors import InputError
from neuronoverlap.numbers import decimals, fixed
from neuronoverlap.report import SPECTRUM_MEASURES, write_report
from neuronoverlap.report.collect import fmt
from neuronoverlap.sets import ProbeSamples, overlap_from_probes
from neuronoverlap.store import ModelInfo, Store, StoreWriter

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Record:
    hit: bool


def _evaluation_summary() -> dict:
    """A BLI result built with the evaluation module's own classes: zero-shot 3/8, en 5/8."""
    from neuronoverlap.evaluation.results import (
        EvaluationResult,
        compare,
        condition_result,
        oracle_comparison,
    )

    zero = condition_result("zero-shot", None, [Record(h) for h in (1, 0, 0, 1, 0, 0, 1, 0)], 0.95, 200, 0)
    bridged = condition_result("bridge:en", "en", [Record(h) for h in (1, 1, 0, 1, 0, 1, 1, 0)], 0.95, 200, 0)
    result = EvaluationResult(
        "bli",
        "de-fr",
        {"zero-shot": zero, "bridge:en": bridged},
        {"en": compare(zero, bridged, 0.95, 200, 0)},
        oracle_comparison(["en"], {"en": bridged.accuracy.accuracy}),
        params={"src": "de", "tgt": "fr", "n": 8},
        model={"name": "tiny-llama"},
        diagnostics={"zero-shot": {"copied": 2}, "bridge:en": {"copied": 1}},
    )
    return result.summary()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "run.h5"
    common = ["--model", "tiny-llama", "--store", str(path), "--quiet"]
    # every position counted: the agnostic-rule test needs always-on (template) neurons in the
    # plain overlap, which word-and-answer counting leaves out on the tiny model
    probe = ["probe", "--pair", "de-fr", "--bridges", "en", "-n", "6", "--max-new-tokens", "3"]
    probe += ["--count", "all"]
    assert main([*probe, *common]) == 0
    assert main(["corpus", "--langs", "en,de,fr,he", "-n", "6", *common]) == 0
    select = ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--permutations", "19", "--count", "all"]
    assert main([*select, *common]) == 0
    with StoreWriter.for_existing(path) as writer:
        writer.put_json("results", "bli-de-fr", _evaluation_summary())
        writer.put_json("results", "mrc-sw", {"note": "free-form", "scores": {"first": 0.25}})
    return path


@pytest.fixture(scope="module")
def report(store_path, tmp_path_factory):
    return write_report(store_path, tmp_path_factory.mktemp("out") / "report", permutations=99)


@pytest.fixture(scope="module")
def page(report) -> str:
    return report.html.read_text(encoding="utf-8")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_html_is_self_contained(report, page):
    assert page.startswith("<!DOCTYPE html>")
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page)
    assert links
    assert not [link for link in links if re.match(r"(?i)(https?:)?//", link)]
    assert "<script" not in page and "<link" not in page and "@import" not in page
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) == len(report.figures) >= 5
    for image in images:
        assert image.startswith("data:image/png;base64,")
        assert base64.b64decode(image.split(",", 1)[1]).startswith(PNG_SIGNATURE)


def test_html_shows_provenance_and_checksums(store_path, page):
    store = Store(store_path)
    assert store.fingerprint in page
    for name in store.probe_sets():
        assert store.probes(*name.split("-")).params["data_sha256"] in page
    for lang in store.corpora():
        assert store.corpus(lang).params["data_sha256"] in page
    assert "Deutsch:&quot;" in page  # an example prompt, escaped


def test_bridge_table_highlights_the_chosen_bridge(store_path, report, page):
    stored = Store(store_path).get_json("results", "bridge-de-fr")
    highlighted = re.findall(r"<tr class=highlight>(.*?)</tr>", page)
    assert len(highlighted) == 1 and f"<td>{stored['chosen']}</td>" in highlighted[0]
    rows = _read_csv(report.tables["bridge_de_fr"])
    assert [r["bridge"] for r in rows] == stored["ranking"]
    assert [r["choice"] for r in rows] == [
        "chosen" if b == stored["chosen"] else "" for b in stored["ranking"]
    ]
    assert float(rows[0]["score"]) == pytest.approx(stored["scores"][rows[0]["bridge"]])


def test_per_layer_bridge_table_uses_real_layer_ids(store_path, report, page):
    stored = Store(store_path).get_json("results", "bridge-de-fr")
    rows = _read_csv(report.tables["bridge_de_fr_layers"])
    assert [int(r["layer"]) for r in rows] == stored["window"]
    assert stored["window"][0] > 0  # the window does not start at 0: ids, not positions
    for row in rows:
        layer = row["layer"]
        score = stored["per_layer"]["en"][layer]
        assert (row["score en"] == "") if score is None else float(row["score en"]) == pytest.approx(score)
        assert int(row["|O_l|"]) == stored["set_sizes"]["en"][layer][0]
        assert int(row["|B_l| en"]) == stored["set_sizes"]["en"][layer][1]
    assert "Per-layer scores de-&gt;fr" in page


def test_probe_overlap_per_layer_matches_the_sets(store_path, report):
    store = Store(store_path)

    def samples(src, tgt):
        view = store.probes(src, tgt)
        return ProbeSamples(view.name, view.array("probability"), view.tokens())

    rows = _read_csv(report.tables["probe_overlap_layers"])
    assert [int(r["layer"]) for r in rows] == list(range(store.n_layers))
    assert [r["third"] for r in rows] == ["early", "middle", "middle", "final"]  # 4 layers
    for src, tgt in (("de", "fr"), ("de", "en"), ("en", "fr")):
        overlap = overlap_from_probes(samples(src, tgt), samples(tgt, src), top_rate=0.01)
        counts = [int(r[f"count {src}-{tgt}"]) for r in rows]
        assert counts == overlap.per_layer_counts().tolist()
        shares = [float(r[f"share {src}-{tgt}"]) for r in rows]
        assert shares == pytest.approx([c / store.d_mlp for c in counts])
    thirds = _read_csv(report.tables["probe_overlap_thirds"])
    assert [r["pair"] for r in thirds] == ["de-en", "de-fr", "en-fr"]
    for row in thirds:
        assert sum(int(row[t]) for t in ("early", "middle", "final")) == int(row["|O|"])


def test_report_json_is_consistent_with_the_store(store_path, report):
    store = Store(store_path)
    data = json.loads(report.json.read_text(encoding="utf-8"))
    assert data["provenance"]["model_fingerprint"] == store.fingerprint
    assert data["provenance"]["model_config"] == json.loads(store.attrs["model_config"])
    assert [p["name"] for p in data["probe_sets"]] == store.probe_sets()
    for entry in data["probe_sets"]:
        view = store.probes(entry["src"], entry["tgt"])
        assert entry["n_samples"] == view.n_samples
        assert entry["mean_tokens"] == pytest.approx(view.tokens().mean())
        assert entry["params"] == view.params
        assert entry["examples"][0]["generation"] == view.strings("generations")[0]
    assert [c["lang"] for c in data["corpora"]] == store.corpora()
    assert [c["n_tokens"] for c in data["corpora"]] == [store.corpus(c).n_tokens for c in store.corpora()]
    assert data["bridges"][0]["document"] == store.get_json("results", "bridge-de-fr")
    assert data["spectrum"]["mantel"]["n_permutations"] == 99
    assert data["similarity"]["languages"] == store.corpora()
    jaccard = np.array(data["similarity"]["jaccard"])
    assert np.allclose(jaccard, jaccard.T) and np.allclose(np.diag(jaccard), 1)
    mantel = json.loads(Path(data["spectrum"]["files"]["mantel_json"]).read_text())
    assert mantel["mantel"]["statistic"] == pytest.approx(data["spectrum"]["mantel"]["statistic"])
    assert set(data["files"]["figures"]) == set(report.figures)


def test_every_table_has_a_csv_and_every_figure_a_png(report):
    assert report.tables and report.figures
    for path in report.tables.values():
        with path.open(encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        assert header and path.suffix == ".csv"
    for path in report.figures.values():
        assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert {
        "probe_overlap",
        "jaccard",
        "cosine",
        "dendrogram",
        "corpus_overlap",
        "bridge-de-fr",
        "eval_bli-de-fr",
    } <= set(report.figures)
    assert all(path.is_file() for path in report.paths())


def test_summary_markdown(store_path, report):
    text = report.markdown.read_text(encoding="utf-8")
    store = Store(store_path)
    stored = store.get_json("results", "bridge-de-fr")
    assert store.fingerprint in text
    assert f"## Bridge for de->fr: {stored['chosen']}" in text
    assert "Mantel r" in text
    links = re.findall(r"\]\(([^)]+)\)", text)
    for name in report.figures:
        assert f"figures/{name}.png" in links
    for link in links:
        assert (report.out_dir / link).exists(), link
    # the markdown tables keep their column count (a '|' in a header is escaped)
    table = [line for line in text.splitlines() if line.startswith("| pair |")][0]
    assert len(re.split(r"(?<!\\)\|", table)) == 10


def test_evaluation_results_are_shown(report, page):
    rows = {r["condition"]: r for r in _read_csv(report.tables["eval_bli-de-fr_conditions"])}
    assert float(rows["zero-shot"]["accuracy"]) == pytest.approx(3 / 8)
    assert float(rows["bridge:en"]["accuracy"]) == pytest.approx(5 / 8)
    # shown to the decimals of the narrowest interval (neuronoverlap.numbers): 8 words, not 3 decimals
    ends = [(float(r[f"{k}_low"]), float(r[f"{k}_high"])) for r in rows.values() for k in ("ci", "wilson")]
    places = decimals(*ends)
    assert places < 3 and f'<td class="num">{fixed(3 / 8, places)}</td>' in page
    assert f'<td class="num">{fixed(5 / 8, places)}</td>' in page
    comparison = _read_csv(report.tables["eval_bli-de-fr_comparisons"])[0]
    assert float(comparison["difference"]) == pytest.approx(2 / 8)
    diagnostics = _read_csv(report.tables["eval_bli-de-fr_diagnostics"])
    assert [(d["condition"], d["copied"]) for d in diagnostics] == [("zero-shot", "2"), ("bridge:en", "1")]
    # a document of unknown shape is shown as a flat key/value table
    generic = {r["field"]: r["value"] for r in _read_csv(report.tables["eval_mrc-sw"])}
    assert generic == {"note": "free-form", "scores.first": "0.25"}


def _root_only_store(path: Path) -> Path:
    info = ModelInfo("tiny-llama", "tiny-llama@0123456789ab", 4, 256, {"n_layers": 4})
    with StoreWriter(path, info, toolkit_version="0.1.0") as writer:
        writer.edit("results", lambda group: None)
    return path


def test_a_store_with_only_the_root_still_reports(tmp_path):
    outputs = write_report(_root_only_store(tmp_path / "empty.h5"), tmp_path / "out")
    page = outputs.html.read_text(encoding="utf-8")
    assert "tiny-llama@0123456789ab" in page and "<img" not in page
    assert outputs.figures == {}
    joined = " ".join(outputs.missing)
    for absent in ("no probe sets", "no corpora", "no bridge selection", "no evaluation"):
        assert absent in joined and absent in page
    data = json.loads(outputs.json.read_text())
    assert data["probe_sets"] == [] and data["spectrum"] is None and data["bridges"] == []
    assert "neuronoverlap corpus" in outputs.markdown.read_text()


def test_a_bridge_selection_with_empty_layers(tmp_path):
    from neuronoverlap.bridge import BootstrapSummary, BridgeSelection
    from neuronoverlap.sets import NeuronSet

    shape = (8, 6)
    sizes = {"en": {5: [3, 2], 6: [0, 4], 7: [2, 2]}, "it": {5: [3, 1], 6: [0, 2], 7: [2, 5]}}
    per_layer = {"en": {5: 0.2, 6: None, 7: 0.4}, "it": {5: 0.1, 6: None, 7: 0.9}}
    selection = BridgeSelection(
        "de",
        "fr",
        "calibrated",
        "cka",
        ["en", "it"],
        [5, 6, 7],
        overlap=NeuronSet.from_indices([(5, 0), (5, 1), (5, 2), (7, 0), (7, 1)], shape),
        bridges={b: NeuronSet.empty(shape) for b in ("en", "it")},
        set_sizes=sizes,
        per_layer_raw=per_layer,
        per_layer_calibrated=per_layer,
        per_layer_reference=per_layer,
        calibration={b: {5: [0.1, 0.2], 6: None, 7: [0.1, 0.2]} for b in ("en", "it")},
        raw_scores={"en": 0.3, "it": 0.5},
        calibrated={"en": 0.3, "it": 0.5},
        pvalues={"en": 0.2, "it": 0.01},
        reference_scores={"en": 0.3, "it": 0.5},
        bootstrap=BootstrapSummary(
            10, "calibrated", 0.95, {"en": [0.1, 0.4], "it": [0.3, 0.7]}, None, {"en": 0.1, "it": 0.9}
        ),
        parameters={"top_rate": 0.01},
    )
    path = _root_only_store(tmp_path / "bridge.h5")
    with StoreWriter.for_existing(path) as writer:
        writer.put_json("results", "bridge-de-fr", selection.to_dict())
    outputs = write_report(path, tmp_path / "out")
    rows = _read_csv(outputs.tables["bridge_de_fr_layers"])
    assert [r["layer"] for r in rows] == ["5", "6", "7"]
    assert rows[1]["score en"] == rows[1]["score it"] == "" and rows[1]["|O_l|"] == "0"
    assert float(rows[2]["score it"]) == 0.9
    ranking = _read_csv(outputs.tables["bridge_de_fr"])
    assert [(r["rank"], r["bridge"], r["choice"]) for r in ranking] == [
        ("1", "it", "chosen"),
        ("2", "en", ""),
    ]
    assert "bridge-de-fr" in outputs.figures
    assert float(ranking[0]["selection probability"]) == 0.9
    assert "Bridge for de-&gt;fr (calibrated): it" in outputs.html.read_text(encoding="utf-8")


def test_a_store_with_only_corpora(store_path, tmp_path):
    path = tmp_path / "corpora.h5"
    shutil.copyfile(store_path, path)
    with h5py.File(path, "r+") as f:
        group = Store(store_path).group
        del f[f"{group}/probes"], f[f"{group}/results"]
    outputs = write_report(path, tmp_path / "out", permutations=19)
    assert {"jaccard", "cosine", "dendrogram", "corpus_overlap"} == set(outputs.figures)
    assert any("no probe sets" in note for note in outputs.missing)
    assert not any("corpora" in note for note in outputs.missing)

    with h5py.File(path, "r+") as f:
        del f[f"{Store(path).group}/corpora/he"], f[f"{Store(path).group}/corpora/fr"]
    two = write_report(path, tmp_path / "out2")
    assert "dendrogram" not in two.figures and "jaccard" in two.figures
    assert any("fewer than three corpora" in note for note in two.missing)


def test_rerun_into_the_same_folder_leaves_nothing_stale(report, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(report.out_dir, out)
    outputs = write_report(_root_only_store(tmp_path / "empty.h5"), out)
    assert not list((out / "figures").glob("*.png"))
    assert not list((out / "spectrum").glob("*"))
    assert sorted(p.name for p in (out / "tables").glob("*.csv")) == sorted(
        p.name for p in outputs.tables.values()
    )


def test_bad_inputs_are_input_errors(tmp_path, store_path):
    with pytest.raises(InputError, match="no store"):
        write_report(tmp_path / "missing.h5", tmp_path / "out")
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(store_path.read_bytes()[:2048])
    with pytest.raises(InputError, match="not a readable HDF5 store"):
        write_report(damaged, tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_report(store_path, tmp_path / "file")
    with pytest.raises(InputError, match="top rate"):
        write_report(store_path, tmp_path / "out", top_rate=1.5)
    with pytest.raises(InputError, match="spectrum measure"):
        write_report(store_path, tmp_path / "out", spectrum_measure="euclid")


def test_command_prints_the_paths(store_path, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_report_parser(parser.add_subparsers(dest="command"))
    help_text = parser._subparsers._group_actions[0].choices["report"].format_help()
    for option in ("--store", "--out", "--top-rate", "--measure", "--quiet"):
        assert option in help_text
    args = parser.parse_args(
        ["report", "--store", str(store_path), "--out", str(tmp_path / "r"), "--permutations", "9"]
    )
    assert cmd_report(args) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "r" / "report.html") in printed
    assert str(tmp_path / "r" / "summary.md") in printed
    args = parser.parse_args(
        ["report", "--store", str(store_path), "--out", str(tmp_path / "q"), "--permutations", "9", "--quiet"]
    )
    assert cmd_report(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "q" / "report.html")


def test_measures_and_number_format():
    from neuronoverlap.analyses.writer import SPECTRUM_MEASURES as ANALYSES_MEASURES

    assert set(SPECTRUM_MEASURES) == set(ANALYSES_MEASURES)
    assert fmt(0.999996) != "1" and fmt(1.0) == "1" and fmt(0.123456) == "0.1235"
    assert fmt(None) == "n/a" and fmt(7) == "7"


def test_the_agnostic_rule_applies_to_the_probe_overlaps_and_the_corpus_sets(store_path, report, tmp_path):
    """With `agnostic_share`, O(s,t) per layer is the top 1% among the neurons that are not above
    the share in every probe set (brute force from the stored arrays), the corpus sets leave out
    those above it in every corpus, and the report's parameters and outputs record the rule."""
    store = Store(store_path)
    names = store.probe_sets()
    fires, tokens = {}, {}
    for name in names:
        view = store.probes(name)
        tokens[name] = view.tokens().astype(np.float64)
        fires[name] = np.einsum("s,sln->ln", tokens[name], view.array("probability").astype(np.float64))
    lowest = np.min([fires[n] / tokens[n].sum() for n in names], axis=0)
    share = float(np.quantile(lowest, 0.995))
    agnostic = lowest > share
    assert share < 1 and 0 < agnostic.sum() < 0.01 * agnostic.size
    ruled = write_report(store_path, tmp_path / "ruled", permutations=99, agnostic_share=share)
    data = json.loads(ruled.json.read_text(encoding="utf-8"))
    assert data["report"]["parameters"]["agnostic_share"] == share
    assert any(
        r["field"] == "report parameter agnostic_share" and float(r["value"]) == share
        for r in _read_csv(ruled.tables["provenance"])
    )
    overlap = data["probe_overlap"]
    assert overlap["agnostic_share"] == share and overlap["n_agnostic"] == int(agnostic.sum())
    assert sorted(overlap["agnostic_over"]) == sorted(names)
    rows = _read_csv(ruled.tables["probe_overlap_layers"])
    plain_rows = _read_csv(report.tables["probe_overlap_layers"])
    for src, tgt in (("de", "fr"), ("de", "en"), ("en", "fr")):
        both = (f"{src}-{tgt}", f"{tgt}-{src}")
        pooled = sum(fires[n] for n in both) / sum(tokens[n].sum() for n in both)
        scores = np.where(agnostic, -1.0, pooled)
        kept = scores >= np.sort(scores.ravel())[-int(np.ceil(0.01 * scores.size))]  # top 1%, ties in
        assert [int(r[f"count {src}-{tgt}"]) for r in rows] == kept.sum(axis=1).tolist()
        plain = pooled >= np.sort(pooled.ravel())[-int(np.ceil(0.01 * pooled.size))]
        assert [int(r[f"count {src}-{tgt}"]) for r in plain_rows] == plain.sum(axis=1).tolist()
        assert (plain & agnostic).any() and not (kept & agnostic).any()
    corpus_low = np.min([store.corpus(c).activation_probability() for c in store.corpora()], axis=0)
    similarity = data["similarity"]
    assert similarity["agnostic_share"] == share
    assert similarity["n_agnostic"] == int((corpus_low > share).sum())
    assert "not language-agnostic" in similarity["active_sets"]
    mantel = json.loads((tmp_path / "ruled" / "spectrum" / "mantel.json").read_text())
    assert mantel["parameters"]["agnostic_share"] == share
    unruled = json.loads(report.json.read_text(encoding="utf-8"))
    assert unruled["report"]["parameters"]["agnostic_share"] is None
    assert unruled["probe_overlap"]["n_agnostic"] == 0 and unruled["similarity"]["n_agnostic"] == 0
    with pytest.raises(InputError, match="agnostic share"):
        write_report(store_path, tmp_path / "bad", agnostic_share=1.0)
