"""The intervention experiments from a store (LAPE's test, BridgeX's premise), their typed result
and the `intervene` commands, on the tiny-llama template store."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap import InputError
from neuronoverlap.interventions.result import InterventionResult, load_results
from neuronoverlap.options import InterventionOptions, NullOptions
from neuronoverlap.pipeline.interventions import intervention_bli, intervention_perplexity, stored_statistic

SMALL_NULL = InterventionOptions(null=NullOptions(exact_sets=3, attribution_sets=200, n_resamples=200))


@pytest.fixture
def store(tiny_store_template, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    return path


def test_lape_perplexity_matrix_is_stored(store, tiny_llama):
    result = intervention_perplexity(
        store,
        ["de", "fr", "en"],
        tiny_llama,
        n_sentences=4,
        options=SMALL_NULL,
        exact_null="all",
        progress=False,
    )
    sets, langs = result.summary["sets"], result.summary["langs"]
    assert langs == ["de", "fr", "en"] and sets
    matrix = np.array(result.summary["effect"])
    assert matrix.shape == (len(sets), 3) and np.isfinite(matrix).all()
    assert np.abs(matrix).max() > 0
    for row in result.rows:
        assert len(row["null_exact"]) == 3 and row["null_attribution_summary"]["n"] == 200
        assert 0 < row["p_exact"] <= 1 and row["interval"][0] <= row["effect"] <= row["interval"][1]
    assert set(result.summary["baseline"]) == set(langs)
    (stored,) = load_results(store)
    assert stored == InterventionResult.from_dict(json.loads(json.dumps(result.to_dict())))


def test_bridgex_premise_and_steering_are_stored(store, tiny_llama):
    result = intervention_bli(
        store,
        ("de", "fr"),
        ["en"],
        tiny_llama,
        n_words=6,
        options=SMALL_NULL,
        steer=True,
        progress=False,
        max_new_tokens=4,
        null_conditions="all",
    )
    names = [row["set"] for row in result.rows]
    assert names[0] == "O" and set(names) <= {"O", "B:en"}
    for row in result.rows:
        assert set(row["conditions"]) == {"zero-shot", "bridge:en"}
        cell = row["conditions"]["zero-shot"]["gold_logprob"]
        assert cell["change"] == pytest.approx(cell["intervened"] - cell["baseline"])
        assert len(cell["null_harm"]) == 3 and 0 < cell["p"] <= 1
        assert np.isfinite(row["gold_nll_effect"]["effect"])
        # per layer by attribution only (as in LAPE's test): no exact scoring per layer
        effect = row["gold_nll_effect"]
        assert effect["per_layer"] == {} and effect["per_layer_attribution"]
    assert result.params["gold_nll_per_layer"] == "attribution"
    assert set(result.summary["steering"]) == {"en"}
    (stored,) = load_results(store)
    assert stored.key == "intervention-bli-de-fr"


def test_a_statistic_the_store_lacks_is_refused(store):
    with pytest.raises(InputError, match="unknown corpus statistic 'median'"):
        stored_statistic(store, "median", "de")
    with pytest.raises(InputError, match="no corpus statistics for 'ja'"):
        stored_statistic(store, "mean", "ja")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(["perplexity", "bli"]),
    st.text(min_size=1, max_size=10),
    st.sampled_from(["zero", "mean", "scale"]),
    st.lists(st.dictionaries(st.text(max_size=5), JSON, max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), JSON, max_size=3),
)
def test_result_round_trips(experiment, name, kind, rows, summary):
    result = InterventionResult(experiment, name, kind, tuple(rows), summary, {"seed": 0})
    assert InterventionResult.from_dict(result.to_dict()) == result
    assert InterventionResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert (
        result.to_dict()["kind"] == "intervention" and result.to_dict()["format"] == InterventionResult.FORMAT
    )


def test_the_perplexity_command_keeps_and_writes_its_result(store, tmp_path, capsys):
    from neuronoverlap.cli import main

    out = tmp_path / "lape.json"
    argv = ["intervene", "perplexity", "--store", store, "--langs", "de,fr", "-n", "3", "--null-sets", "2"]
    argv += ["--attribution-sets", "50", "--json", out, "--quiet", "--model", "tiny-llama"]
    assert main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out
    assert "own language changes most" in printed and "results/intervention-perplexity-de-fr" in printed
    written = json.loads(out.read_text())
    assert written["kind"] == "intervention" and written["experiment"] == "perplexity"
    assert [r.key for r in load_results(store)] == ["intervention-perplexity-de-fr"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["perplexity", "--langs", "de,ja"], ["no corpus statistics for 'ja'"]),
        (["perplexity", "--langs", "de"], ["at least two different languages"]),
        (["perplexity", "--langs", "de,fr", "--null-sets", "0"], ["--null-sets must be an integer >= 1"]),
        (["perplexity", "--langs", "de,fr", "--bands", "0"], ["--bands must be an integer >= 1"]),
        (["perplexity", "--langs", "de,fr", "--confidence", "1"], ["--confidence must be in (0, 1)"]),
        (["perplexity", "--langs", "de,fr", "--factor", "2"], ["--factor belongs to kind scale, not zero"]),
        (
            ["perplexity", "--langs", "de,fr", "--kind", "scale", "--factor", "nan"],
            ["--factor must be a finite"],
        ),
        (["perplexity", "--langs", "de,fr", "--kind", "scale"], ["--kind scale needs a finite factor"]),
        (
            ["perplexity", "--langs", "de,fr", "--kind", "value", "--statistic", "median"],
            ["unknown --statistic 'median'"],
        ),
        (["perplexity", "--langs", "de,fr", "--kind", "ablate"], ["invalid choice: 'ablate'"]),
        (["bli", "--pair", "de-fr", "--bridges", "es"], ["lacks probe sets es-de"]),
        (["bli", "--pair", "de-fr", "--bridges", "fr"], ["a bridge cannot be"]),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(store, refused, no_model_load, argv, expected):
    refused(["intervene", *argv, "--store", store, "--quiet"], store.parent, *expected)


def test_script_share_counts_letters_of_the_target_script():
    from neuronoverlap.interventions.metrics import in_script, script_flags

    assert in_script("Hund", "Latn") and in_script("犬", "Jpan") and in_script("いぬ", "Jpan")
    assert not in_script("犬", "Latn") and not in_script("dog犬", "Jpan") and not in_script("", "Latn")
    assert in_script("«chien»", "Latn")  # punctuation is not a letter
    assert script_flags(["كلب", "dog", ""], "ar").tolist() == [True, False, False]
    assert script_flags(["כלב", "كلب"], "he").tolist() == [True, False]


def test_the_bli_command_prints_each_set_and_condition(store, capsys):
    from neuronoverlap.cli import main

    argv = ["intervene", "bli", "--store", store, "--pair", "de-fr", "--bridges", "en", "-n", "4"]
    argv += ["--null-sets", "1", "--attribution-sets", "20", "--max-new-tokens", "3", "--quiet", "--steer"]
    assert main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out
    assert "zero-shot" in printed and "bridge:en" in printed and "steer O toward en" in printed
    assert [r.key for r in load_results(store)] == ["intervention-bli-de-fr"]


def test_the_report_shows_the_stored_results(store, tiny_llama, tmp_path):
    """The report's "Do these neurons matter?" section lays out the stored result: a row per set,
    each language's change and z as stored; the section says so when there is none."""
    import csv

    from neuronoverlap.pipeline import report

    empty = report(store, tmp_path / "before")
    assert "No intervention results in this store" in empty.html.read_text(encoding="utf-8")
    intervention_perplexity(
        store, ["de", "fr"], tiny_llama, n_sentences=3, options=SMALL_NULL, progress=False
    )
    (result,) = load_results(store)
    outputs = report(store, tmp_path / "after")
    page = outputs.html.read_text(encoding="utf-8")
    assert "Do these neurons matter?" in page and "LAPE&#x27;s test" in page
    assert "## Do these neurons matter?" in outputs.markdown.read_text(encoding="utf-8")
    table = outputs.tables[f"intervention_{result.name}"]
    with open(table, encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["set", "change de", "z de", "change fr", "z fr"]
    for i, name in enumerate(result.summary["sets"]):
        assert rows[i + 1][0] == name
        stored = [
            v
            for pair in zip(result.summary["effect"][i], result.summary["z_exact"][i], strict=True)
            for v in pair
        ]
        # a blank z: no exact null ran in that cell (the default runs it on the diagonal only)
        assert [float(v) if v else float("nan") for v in rows[i + 1][1:]] == pytest.approx(
            stored, nan_ok=True
        )


def test_the_exact_null_runs_on_the_diagonal_by_default_and_changes_no_effect(store, tiny_llama):
    """The default runs random sets exactly only where a set meets its own language; the sets'
    own effects and the diagonal's nulls are those of the run with every cell's null."""
    kwargs = dict(n_sentences=3, options=SMALL_NULL, progress=False, save=False)
    everywhere = intervention_perplexity(store, ["de", "fr"], tiny_llama, exact_null="all", **kwargs)
    diagonal = intervention_perplexity(store, ["de", "fr"], tiny_llama, **kwargs)
    assert diagonal.params["exact_null"] == "diagonal"
    assert diagonal.summary["effect"] == everywhere.summary["effect"]
    for row, full in zip(diagonal.rows, everywhere.rows, strict=True):
        if row["set"] == row["lang"]:
            assert row["null_exact"] == full["null_exact"] and row["p_exact"] == full["p_exact"]
        else:
            assert row["null_exact"] == [] and np.isnan(row["p_exact"]) and np.isnan(row["z_exact"])
            assert row["p_attribution"] == full["p_attribution"]


def test_random_sets_run_only_the_conditions_their_set_is_judged_on(store, tiny_llama):
    kwargs = dict(n_words=5, options=SMALL_NULL, progress=False, max_new_tokens=3, save=False)
    everywhere = intervention_bli(store, ("de", "fr"), ["en"], tiny_llama, null_conditions="all", **kwargs)
    own = intervention_bli(store, ("de", "fr"), ["en"], tiny_llama, **kwargs)
    judged = {"O": "zero-shot", "B:en": "bridge:en"}
    for row, full in zip(own.rows, everywhere.rows, strict=True):
        for condition, metrics in row["conditions"].items():
            for metric, cell in metrics.items():
                if metric not in ("p_at_1", "gold_logprob"):
                    continue
                assert cell["change"] == full["conditions"][condition][metric]["change"]
                if condition == judged[row["set"]]:
                    assert cell["p"] == full["conditions"][condition][metric]["p"] and cell["null_harm"]
                else:
                    assert cell["p"] is None and cell["null_harm"] == []


def test_a_killed_run_resumes_from_its_cache_with_the_same_result(store, tiny_llama, tmp_path, monkeypatch):
    """Runs finished before a crash are read back; the resumed result equals an uninterrupted one."""
    import neuronoverlap.interventions.effects as effects

    kwargs = dict(n_sentences=3, options=SMALL_NULL, progress=False, save=False)
    plain = intervention_perplexity(store, ["de", "fr"], tiny_llama, **kwargs)
    cache = tmp_path / "cache"
    real, calls = effects.score_texts, []

    def dies_on_the_fifth(*args, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(effects, "score_texts", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        intervention_perplexity(store, ["de", "fr"], tiny_llama, cache_dir=cache, **kwargs)
    kept = len(list(cache.glob("*.npz")))
    assert kept >= 4 and not list(cache.glob(".*"))
    monkeypatch.setattr(effects, "score_texts", real)
    resumed = intervention_perplexity(store, ["de", "fr"], tiny_llama, cache_dir=cache, **kwargs)
    same = lambda a, b: json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)  # noqa: E731 (nan != nan)
    assert same(resumed, plain)

    def never(*args, **kw):
        raise AssertionError("a finished run was computed again")

    monkeypatch.setattr(effects, "score_texts", never)
    monkeypatch.setattr(effects, "attribution_scores", never)
    again = intervention_perplexity(store, ["de", "fr"], tiny_llama, cache_dir=cache, **kwargs)
    assert same(again, plain)


def test_a_bli_run_resumes_from_its_cache(store, tiny_llama, tmp_path, monkeypatch):
    import neuronoverlap.pipeline.interventions as pipeline

    kwargs = dict(n_words=4, options=SMALL_NULL, progress=False, max_new_tokens=3, save=False)
    first = intervention_bli(store, ("de", "fr"), ["en"], tiny_llama, cache_dir=tmp_path / "c", **kwargs)
    real = pipeline._bli_metrics
    calls = []  # the baseline is not cached (one run); every intervened evaluation is
    monkeypatch.setattr(pipeline, "_bli_metrics", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = intervention_bli(store, ("de", "fr"), ["en"], tiny_llama, cache_dir=tmp_path / "c", **kwargs)
    assert calls == [1]
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(first.to_dict(), sort_keys=True)


def test_the_registered_decisions_read_real_results(store, tiny_llama):
    """findings §5's decision rules run on the documents the experiments store (tiny-llama)."""
    from neuronoverlap.interventions.decisions import bli_decisions, lape_decisions

    kwargs = dict(options=SMALL_NULL, progress=False, save=False)
    perplexity = intervention_perplexity(store, ["de", "fr"], tiny_llama, n_sentences=3, **kwargs)
    decided = lape_decisions(json.loads(json.dumps(perplexity.to_dict())))
    assert decided["hypothesis_1"]["verdict"] in ("holds", "fails", "inconclusive")
    assert set(decided["languages"]) == {"de", "fr"}
    bli = intervention_bli(store, ("de", "fr"), ["en"], tiny_llama, n_words=4, max_new_tokens=3, **kwargs)
    decided = bli_decisions([json.loads(json.dumps(bli.to_dict()))])
    assert set(decided["pairs"]["de-fr"]) >= {"O", "B:en", "premise_holds"}
