"""BLI logic with a scripted generator in place of the model: prompts, bridge words, few-shot
prefixes, scoring, statistics and output files."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

import neuronoverlap.evaluation.generate as generate_module
from neuronoverlap.data import BilingualDictionary, load_dictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.bli import (
    PROMPT_STYLES,
    BLIPrompts,
    bridged_prefix,
    direct_prefix,
    evaluate_bli,
    render_bridged,
    write_bli_results,
)
from neuronoverlap.evaluation.protocol import load_examples
from neuronoverlap.models import Generation

PAIRS = [
    ("waves", "wellen"),
    ("waves", "welle"),
    ("invented", "erfunden"),
    ("landed", "gelandet"),
    ("sandy", "sandstrand"),
    ("paint", "farbe"),
    ("acres", "hektar"),
]
FRENCH = {
    "waves": "vagues",
    "invented": "inventé",
    "landed": "atterri",
    "sandy": "sable",
    "paint": "peinture",
    "acres": "hectares",
}
FIRST_GOLD: dict[str, str] = {}
for _source, _target in PAIRS:
    FIRST_GOLD.setdefault(_source, _target)
PAPER = re.compile(r'^(?P<S>[^:"]+):"(?P<w>[^"]*)"→(?P<B>[^:"]+):(?:"(?P<b>[^"]*)"→(?P<T>[^:"]+):)?$')


class FakeModel:
    """What the evaluation reads from a model besides generation."""

    name = "fake"
    device = "cpu"
    dtype = "float32"

    def fingerprint(self) -> str:
        return "fake@000000000000"

    def config_summary(self) -> dict:
        return {"name": self.name}


class ScriptedGenerator:
    """Answers the last line of each prompt with `answer(query_match)`; keeps every prompt."""

    def __init__(self, answer):
        self.answer = answer
        self.prompts: list[str] = []
        self.batch_sizes: list[int] = []

    def __call__(self, model, prompts, stop=None, consumer=None):
        self.batch_sizes.append(len(prompts))
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            match = PAPER.match(prompt.split("\n")[-1])
            assert match, prompt
            out.append(Generation(prompt, self.answer(match)))
        return out


def script(match) -> str:
    """Zero-shot: right for 'waves' and 'invented', a copy otherwise; step one: the French word;
    bridged: right whenever the bridge word is the French word."""
    w, target = match["w"], match["B"]
    gold = FIRST_GOLD
    if match["b"] is None and target == "Deutsch":
        return f' "{gold[w].capitalize()}"' if w in ("waves", "invented") else f' "{w}"'
    if match["b"] is None:
        return f' "{FRENCH[w]}" (fr)'
    return f" „{gold[w]}“ und mehr" if match["b"] == FRENCH[w] else ' "nein"'


@pytest.fixture
def scripted(monkeypatch):
    generator = ScriptedGenerator(script)
    monkeypatch.setattr(generate_module, "generate_greedy", generator)
    return generator


@pytest.fixture
def dictionary():
    return BilingualDictionary.from_pairs("en", "de", PAIRS, split="test")


def test_zero_shot_and_bridged_scores(scripted, dictionary):
    result = evaluate_bli(
        FakeModel(), "en", "de", ["fr"], batch_size=4, progress=False, dictionary=dictionary, n_resamples=500
    )
    zero, bridged = result.conditions["zero-shot"], result.conditions["bridge:fr"]
    assert [r.source for r in zero.records] == list(dictionary.source_words)
    assert [r.hit for r in zero.records] == [True, True, False, False, False, False]
    assert zero.accuracy.accuracy == pytest.approx(2 / 6)
    assert bridged.accuracy.accuracy == 1.0
    first = bridged.records[0]
    assert first.gold == ["wellen", "welle"]
    assert first.bridge_word == "vagues"
    assert first.bridge_prompt == 'English:"waves"→Français:'
    assert first.prompt == 'English:"waves"→Français:"vagues"→Deutsch:'
    assert first.answer == "wellen" and first.hit
    assert all(r.bridge_hit for r in bridged.records)  # every French word is gold in en-fr
    comparison = result.comparisons["fr"]
    assert (comparison.mcnemar.only_a, comparison.mcnemar.only_b) == (0, 4)
    assert comparison.mcnemar.method == "exact"
    assert comparison.mcnemar.pvalue == pytest.approx(2 / 16)
    assert result.oracle.oracle == "fr"
    zero_diag, bridge_diag = result.diagnostics["zero-shot"], result.diagnostics["bridge:fr"]
    assert (zero_diag["n_copied"], zero_diag["n_hit_by_copy"], zero_diag["n_empty"]) == (4, 0, 0)
    assert zero_diag["accuracy_not_identical"] == pytest.approx(2 / 6)
    assert (bridge_diag["n_bridge_hit"], bridge_diag["accuracy_given_bridge_hit"]) == (6, 1.0)
    assert bridge_diag["accuracy_given_bridge_miss"] is None
    # 6 words x (zero-shot, step one, step two), in batches of at most 4
    assert len(scripted.prompts) == 18 and max(scripted.batch_sizes) == 4


def test_the_zero_shot_condition_can_be_left_out(scripted, dictionary):
    """zero_shot=False generates only the bridged conditions (a null judged through one bridge
    needs no more), with the same records as a full run; without a bridge it is an error."""
    kwargs = dict(batch_size=4, progress=False, dictionary=dictionary, n_resamples=500)
    full = evaluate_bli(FakeModel(), "en", "de", ["fr"], **kwargs)
    scripted.prompts.clear()
    bridged = evaluate_bli(FakeModel(), "en", "de", ["fr"], zero_shot=False, **kwargs)
    assert list(bridged.conditions) == ["bridge:fr"] and bridged.comparisons == {}
    assert bridged.conditions["bridge:fr"].records == full.conditions["bridge:fr"].records
    assert bridged.params["zero_shot"] is False and "zero-shot" not in bridged.params["few_shot_prefixes"]
    assert len(scripted.prompts) == 12  # 6 words x (step one, step two)
    with pytest.raises(InputError, match="needs at least one bridge"):
        evaluate_bli(FakeModel(), "en", "de", [], zero_shot=False, **kwargs)


def test_bridge_word_is_kept_whole_up_to_the_first_separator(scripted, dictionary):
    def answer(match):
        return ' "des vagues, la mer"' if match["b"] is None and match["B"] != "Deutsch" else ' "x"'

    scripted.answer = answer
    result = evaluate_bli(
        FakeModel(), "en", "de", ["fr"], progress=False, dictionary=dictionary, n_resamples=100
    )
    records = result.conditions["bridge:fr"].records
    assert {r.bridge_word for r in records} == {"des vagues"}
    assert records[0].prompt == 'English:"waves"→Français:"des vagues"→Deutsch:'
    assert all(r.bridge_hit is False for r in records)


def test_ranking_and_oracle(scripted, dictionary):
    result = evaluate_bli(
        FakeModel(),
        "en",
        "de",
        ["fr"],
        ranking=["fr"],
        progress=False,
        dictionary=dictionary,
        n_resamples=100,
    )
    assert (result.oracle.selected, result.oracle.selected_rank) == ("fr", 1)
    with pytest.raises(InputError, match="no accuracy"):
        evaluate_bli(
            FakeModel(), "en", "de", ["fr"], ranking=["es", "fr"], progress=False, dictionary=dictionary
        )
    with pytest.raises(InputError, match="needs bridges"):
        evaluate_bli(FakeModel(), "en", "de", ranking=["fr"], progress=False, dictionary=dictionary)


def test_seeded_sample_of_unique_source_words(scripted):
    full = load_dictionary("en", "de", "test")
    one = evaluate_bli(FakeModel(), "en", "de", n=5, seed=3, progress=False, n_resamples=10, dictionary=full)
    again = evaluate_bli(FakeModel(), "en", "de", n=5, seed=3, progress=False, n_resamples=10)
    other = evaluate_bli(FakeModel(), "en", "de", n=5, seed=4, progress=False, n_resamples=10)
    words = [r.source for r in one.conditions["zero-shot"].records]
    assert len(set(words)) == 5
    assert words == [r.source for r in again.conditions["zero-shot"].records]
    assert words != [r.source for r in other.conditions["zero-shot"].records]
    records = one.conditions["zero-shot"].records
    assert all(r.gold == list(full.translations[r.source]) for r in records)
    assert one.data["dictionary_source_words"] == full.n_source_words


def test_few_shot_prefixes(scripted, dictionary):
    prompts = BLIPrompts(shots=3)
    excluded = set(dictionary.source_words)
    examples = load_examples("en", ["de"], ["fr"], 3, 0, excluded)
    prefix = direct_prefix(prompts, "en", "de", examples)
    lines = prefix.rstrip("\n").split("\n")
    train = load_dictionary("en", "de", "train")
    assert len(lines) == 3
    for line in lines:
        match = re.fullmatch(r'English:"(.+)"→Deutsch:"(.+)"', line)
        assert match and match[1] in train.translations and match[1] not in excluded
        assert match[2] == train.translations[match[1]][0]
    bridged = bridged_prefix(prompts, "en", "fr", "de", examples).rstrip("\n").split("\n")
    assert len(bridged) == 3
    shape = r'English:"[^"]+"→Français:"[^"]+"→Deutsch:"[^"]+"'
    assert all(re.fullmatch(shape, x) for x in bridged)

    result = evaluate_bli(
        FakeModel(),
        "en",
        "de",
        ["fr"],
        prompts=prompts,
        progress=False,
        dictionary=dictionary,
        n_resamples=10,
    )
    zero_shot = [p for p in scripted.prompts if p.split("\n")[-1].count("→") == 1 and p.endswith("→Deutsch:")]
    assert len(zero_shot) == 6 and all(p.startswith(prefix) for p in zero_shot)
    assert all(p.count("\n") == 3 for p in scripted.prompts)
    assert result.params["few_shot_words"] == [e.source for e in examples]


@pytest.mark.parametrize("style", ["paper", "study"])
def test_every_condition_shows_the_same_example_words(scripted, dictionary, style):
    """Zero-shot, and steps 1 and 2 of every bridge, show the same example source words (in the
    same order), whatever the style; only the shown translations differ."""
    prompts = replace(
        PROMPT_STYLES["paper"], shots=4, non_identical_shots=PROMPT_STYLES[style].non_identical_shots
    )
    result = evaluate_bli(
        FakeModel(),
        "en",
        "de",
        ["fr", "es", "it"],
        prompts=prompts,
        progress=False,
        dictionary=dictionary,
        n_resamples=10,
        seed=7,
    )
    prefixes = result.params["few_shot_prefixes"]
    assert len(prefixes) == 1 + 2 * 3
    shown = {
        name: [re.match(r'English:"([^"]+)"', line)[1] for line in text.splitlines()]
        for name, text in prefixes.items()
    }
    words = result.params["few_shot_words"]
    assert len(words) == 4 and all(w not in dictionary.translations for w in words)
    assert all(found == words for found in shown.values()), shown
    seen = {p.split("\n", 4)[4].split('"')[1] for p in scripted.prompts}
    assert seen <= set(dictionary.source_words)  # every prompt after its 4-line prefix is evaluated
    for p in scripted.prompts:
        assert [re.match(r'English:"([^"]+)"', line)[1] for line in p.split("\n")[:4]] == words


def test_lines_style_renders_and_extracts(monkeypatch, dictionary):
    seen = []

    def fake(model, prompts, stop=None, consumer=None):
        seen.extend(prompts)
        return [Generation(p, " Wellen\n") for p in prompts]

    monkeypatch.setattr(generate_module, "generate_greedy", fake)
    result = evaluate_bli(
        FakeModel(),
        "en",
        "de",
        ["fr"],
        prompts=PROMPT_STYLES["lines"],
        progress=False,
        dictionary=dictionary,
        n_resamples=10,
    )
    assert "English: waves\nDeutsch:" in seen
    assert "English: waves\nFrançais: Wellen\nDeutsch:" in seen
    assert result.conditions["zero-shot"].records[0].hit


def test_templates_and_bridges_are_checked(scripted, dictionary):
    run = dict(progress=False, dictionary=dictionary)
    with pytest.raises(InputError, match="lacks"):
        evaluate_bli(FakeModel(), "en", "de", prompts=BLIPrompts(direct="{S}→{T}:"), **run)
    with pytest.raises(InputError, match="may only use"):
        evaluate_bli(FakeModel(), "en", "de", prompts=BLIPrompts(direct="{X}{w}"), **run)
    with pytest.raises(InputError, match="lacks"):
        evaluate_bli(FakeModel(), "en", "de", prompts=BLIPrompts(bridged="{S}{w}→{T}"), **run)
    with pytest.raises(InputError, match="source or target"):
        evaluate_bli(FakeModel(), "en", "de", ["en"], **run)
    with pytest.raises(InputError, match="twice"):
        evaluate_bli(FakeModel(), "en", "de", ["fr", "fr"], **run)
    with pytest.raises(InputError, match="unknown language"):
        evaluate_bli(FakeModel(), "en", "xx", **run)
    with pytest.raises(InputError, match="at least 1"):
        evaluate_bli(FakeModel(), "en", "de", n=0, **run)
    with pytest.raises(InputError):
        evaluate_bli(FakeModel(), "en", "de", prompts=BLIPrompts(shots=-1), **run)
    assert scripted.prompts == []  # nothing generated before the checks


def test_render_bridged_names():
    text = render_bridged('{S}:"{w}"→{B}:"{b}"→{T}:', "zh", "en", "ja", "水", "water")
    assert text == '中文:"水"→English:"water"→日本語:'
    english = render_bridged("{S}/{B}/{T}", "zh", "en", "ja", "", "", names="english")
    assert english == "Chinese/English/Japanese"


def test_written_results(scripted, dictionary, tmp_path):
    result = evaluate_bli(
        FakeModel(), "en", "de", ["fr"], progress=False, dictionary=dictionary, n_resamples=100, seed=5
    )
    paths = write_bli_results(result, tmp_path / "out")
    summary = json.loads(paths["summary"].read_text(encoding="utf-8"))
    assert paths["summary"].name == "bli-en-de.json" and paths["records"].name == "bli-en-de.jsonl"
    assert summary["model"]["fingerprint"] == "fake@000000000000"
    assert summary["params"]["seed"] == 5 and summary["params"]["bridges"] == ["fr"]
    assert summary["params"]["prompts"]["direct"] == '{S}:"{w}"→{T}:'
    assert summary["conditions"]["bridge:fr"]["accuracy"] == 1.0
    assert summary["comparisons"]["fr"]["mcnemar"]["only_b"] == 4
    assert summary["oracle"]["oracle"] == "fr"
    rows = [json.loads(line) for line in paths["records"].read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12
    expected_keys = {
        "condition",
        "source",
        "gold",
        "prompt",
        "generated",
        "answer",
        "hit",
        "copied",
        "bridge",
        "bridge_prompt",
        "bridge_generated",
        "bridge_word",
        "bridge_hit",
    }
    assert all(set(row) == expected_keys for row in rows)
    assert sum(row["hit"] for row in rows if row["condition"] == "zero-shot") == 2
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_bli_results(result, tmp_path / "file")


def test_copies_of_identical_gold_words_are_counted_apart(monkeypatch):
    pairs = [("napoleon", "napoleon"), ("toy", "spielzeug"), ("indies", "indies"), ("dark", "dunkel")]

    def copy(model, prompts, stop=None, consumer=None):
        return [Generation(p, f' "{PAPER.match(p)["w"].capitalize()}"') for p in prompts]

    monkeypatch.setattr(generate_module, "generate_greedy", copy)
    result = evaluate_bli(
        FakeModel(),
        "en",
        "de",
        progress=False,
        n_resamples=10,
        dictionary=BilingualDictionary.from_pairs("en", "de", pairs),
    )
    assert result.accuracy_of("zero-shot") == 0.5
    diagnostics = result.diagnostics["zero-shot"]
    assert (diagnostics["n_copied"], diagnostics["n_hit_by_copy"]) == (4, 2)
    assert (diagnostics["n_not_identical"], diagnostics["accuracy_not_identical"]) == (2, 0.0)
