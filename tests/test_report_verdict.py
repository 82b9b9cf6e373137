"""The verdict: real selections (`select_from_activations` on planted data) and real BLI
summaries (the evaluation module's own classes) turned into sentences; the rule's edges and
its properties."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.bridge import BootstrapSummary, BridgeSelection, select_from_activations
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.results import EvaluationResult
from neuronoverlap.numbers import decimals, fixed, p_is, permutation_floor, span
from neuronoverlap.report.verdict import CLEAR_PROBABILITY, bridge_verdict, choice_rule, first_place
from neuronoverlap.sets import NeuronSet

N_O = 6


@dataclass
class Record:
    hit: bool


def bli_summary(zero_hits, bridge_hits, bridge="strong", src="s", tgt="t", n_resamples=400):
    """A BLI summary built with the evaluation module's classes, as `evaluate bli` stores it."""
    from neuronoverlap.evaluation.results import compare, condition_result

    zero = condition_result("zero-shot", None, [Record(bool(h)) for h in zero_hits], 0.95, n_resamples, 0)
    bridged = condition_result(
        f"bridge:{bridge}", bridge, [Record(bool(h)) for h in bridge_hits], 0.95, n_resamples, 0
    )
    result = EvaluationResult(
        "bli",
        f"{src}-{tgt}",
        {"zero-shot": zero, f"bridge:{bridge}": bridged},
        {bridge: compare(zero, bridged, 0.95, n_resamples, 0)},
        None,
        params={"src": src, "tgt": tgt, "n": len(zero_hits)},
        model={"name": "test"},
    )
    return EvaluationResult.from_dict(json.loads(json.dumps(result.to_dict())))  # as the store holds it


def _selection(acts, bridges, n_bootstrap=100, seed=0):
    shape = (1, acts.shape[1])
    overlap = NeuronSet.from_indices([(0, j) for j in range(N_O)], shape)
    sets = {b: NeuronSet.from_indices([(0, int(j)) for j in cols], shape) for b, cols in bridges.items()}
    result = select_from_activations(
        {0: acts}, overlap, sets, n_random=99, n_bootstrap=n_bootstrap, seed=seed
    )
    return BridgeSelection.from_dict(json.loads(json.dumps(result.to_dict())))  # as the store holds it


def _planted(rng, n=48, d=80):
    acts = rng.normal(size=(n, d))
    latent = rng.normal(size=n)
    acts[:, :N_O] = latent[:, None] + 0.3 * rng.normal(size=(n, N_O))
    return acts, latent


@pytest.fixture(scope="module")
def clear_selection():
    """One bridge carries the overlap's latent variable, the other is independent noise."""
    rng = np.random.default_rng(5)
    acts, latent = _planted(rng)
    strong, weak = np.arange(10, 13), np.arange(20, 44)
    acts[:, strong] = latent[:, None] ** 2 + 0.5 * rng.normal(size=(len(latent), 3))
    return _selection(acts, {"weak": weak, "strong": strong})


@pytest.fixture(scope="module")
def tied_selection():
    """Two bridges carry the same dependence on different neurons, a third none."""
    rng = np.random.default_rng(101)
    acts, latent = _planted(rng)
    for cols in (np.arange(10, 14), np.arange(20, 24)):
        acts[:, cols] = latent[:, None] ** 2 + 0.4 * rng.normal(size=(len(latent), 4))
    return _selection(acts, {"a": np.arange(10, 14), "b": np.arange(20, 24), "c": np.arange(30, 34)}, seed=1)


def test_a_planted_clear_winner_is_a_clear_choice(clear_selection):
    verdict = bridge_verdict(clear_selection)
    assert verdict.chosen == "strong" and verdict.choice == "clear"
    assert verdict.headline.startswith("Bridge for s->t: strong, a clear choice")
    probability = clear_selection.bootstrap.selection_probability["strong"]
    low, high = clear_selection.bootstrap.intervals["strong"]
    assert f"{probability:.0%} of 100 bootstrap resamples" in verdict.text()
    places = decimals(*clear_selection.bootstrap.intervals.values())
    assert f"95% interval {span(low, high, places)}." in verdict.text()
    z = fixed(clear_selection.scores["strong"], places)
    assert verdict.lines[0].startswith(f"Chosen bridge for s->t: strong, effect {z}")
    assert "Margin over the runner-up (weak)" in verdict.text()
    assert verdict.effect == "not evaluated" and "No BLI evaluation" in verdict.headline


def test_a_planted_tie_is_no_clear_choice(tied_selection):
    verdict = bridge_verdict(tied_selection)
    boot = tied_selection.bootstrap
    assert verdict.choice == "unclear"
    assert boot.top_two["near_tie"] and "A near tie" in verdict.text()  # issue 26: named
    assert verdict.headline.startswith("No clear choice of bridge for s->t")
    other = "b" if verdict.chosen == "a" else "a"
    assert other in verdict.headline.split(";")[1]  # named among the overlapping intervals
    share = boot.selection_probability[verdict.chosen]
    if share < CLEAR_PROBABILITY:  # one data set of a tie: the chosen one may still lead often
        assert f"{verdict.chosen} ranked first in only {share:.0%} of bootstrap resamples" in verdict.headline
    assert "interval of its lead over the runner-up" in verdict.headline
    assert "A clear choice needs first place in at least 80%" in verdict.text()


def test_bli_all_zeros_cannot_tell(clear_selection):
    zeros = np.zeros(100, dtype=bool)
    verdict = bridge_verdict(clear_selection, bli_summary(zeros, zeros))
    assert verdict.effect == "cannot tell"
    assert (
        "BLI cannot tell: 0.000 zero-shot and 0.000 through strong on 100 words "
        "(no word translated right either way)."
    ) in verdict.headline


def test_a_planted_bli_gain_helped_and_a_loss_hurt(clear_selection):
    rng = np.random.default_rng(0)
    zero = rng.random(200) < 0.2
    better = zero | (rng.random(200) < 0.3)
    helped = bridge_verdict(clear_selection, bli_summary(zero, better))
    assert helped.effect == "helped" and "BLI: strong helped" in helped.headline
    assert "paired interval +0." in helped.text()
    hurt = bridge_verdict(clear_selection, bli_summary(better, zero))
    assert hurt.effect == "hurt" and "BLI: strong hurt" in hurt.headline


def test_the_same_words_right_either_way_cannot_tell(clear_selection):
    hits = np.arange(50) % 3 == 0
    verdict = bridge_verdict(clear_selection, bli_summary(hits, hits))
    assert verdict.effect == "cannot tell" and "no word differs between the two" in verdict.headline


def test_missing_bootstrap_says_there_is_no_interval(clear_selection):
    selection = replace(clear_selection, bootstrap=None)
    verdict = bridge_verdict(selection)
    assert verdict.choice == "no interval"
    assert "with no interval" in verdict.headline
    assert any("The selection has no interval" in line for line in verdict.lines)
    assert "interval" not in verdict.lines[0]  # no made-up interval for the chosen bridge


def test_a_real_selection_without_bootstrap():
    rng = np.random.default_rng(3)
    acts, _ = _planted(rng)
    selection = _selection(acts, {"x": np.arange(10, 14), "y": np.arange(20, 24)}, n_bootstrap=0)
    assert bridge_verdict(selection).choice == "no interval"


def test_one_candidate_has_nothing_to_choose_between():
    rng = np.random.default_rng(4)
    acts, _ = _planted(rng)
    verdict = bridge_verdict(_selection(acts, {"only": np.arange(10, 14)}, n_bootstrap=20))
    assert verdict.choice == "one candidate" and "the only candidate" in verdict.headline


def test_a_bli_result_of_another_pair_is_refused(clear_selection):
    with pytest.raises(InputError, match="the BLI result is for s-u"):
        bridge_verdict(clear_selection, bli_summary([1, 0], [1, 1], src="s", tgt="u"))


def test_a_bli_result_without_the_chosen_bridge_says_so(clear_selection):
    verdict = bridge_verdict(clear_selection, bli_summary([1, 0], [1, 1], bridge="weak"))
    assert verdict.effect == "not evaluated"
    assert "BLI did not evaluate the chosen bridge strong (evaluated: weak)" in verdict.headline


def test_text_is_the_headline_then_the_lines(tied_selection):
    verdict = bridge_verdict(tied_selection)
    lines = verdict.text().splitlines()
    assert lines[0] == verdict.headline and lines[1:] == [f"  {line}" for line in verdict.lines]
    assert json.loads(json.dumps(verdict.to_dict()))["choice"] == "unclear"


def _synthetic(probabilities: list[float], low: float, order: list[int]) -> BridgeSelection:
    """A selection with given selection probabilities (first is chosen) and lead interval."""
    names = [f"b{i}" for i in range(len(probabilities))]
    candidates = [names[i] for i in order]
    scores = {b: 1.0 - i / 10 for i, b in enumerate(names)}
    empty = NeuronSet.from_indices([], (1, 4))
    return BridgeSelection(
        src="s",
        tgt="t",
        method="calibrated",
        score="reference",
        candidates=candidates,
        window=[0],
        overlap=empty,
        bridges=dict.fromkeys(names, empty),
        set_sizes={b: {0: [0, 0]} for b in names},
        per_layer_raw={},
        per_layer_calibrated={},
        per_layer_reference={},
        calibration={},
        raw_scores=scores,
        calibrated=scores,
        pvalues=dict.fromkeys(names, 0.01),
        reference_scores=scores,
        bootstrap=BootstrapSummary(
            n_resamples=100,
            statistic="calibrated",
            level=0.95,
            intervals={b: [0.5 - i / 10, 1.5 - i / 10] for i, b in enumerate(names)},
            top_two={
                "first": names[0],
                "second": names[1],
                "difference": 0.1,
                "interval": [low, low + 0.3],
                "share_first_ahead": 0.9,
            },
            selection_probability=dict(zip(names, probabilities, strict=True)),
        ),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=6),
    st.floats(-0.5, 0.5),
    st.floats(0, 0.2),
    st.randoms(use_true_random=False),
)
def test_the_rule_is_monotone_and_ignores_candidate_order(weights, low, more, random):
    total = sum(weights) or 1.0
    probabilities = [w / total for w in weights]
    order = list(range(len(weights)))
    random.shuffle(order)
    selection = _synthetic(probabilities, low, order)
    choice = choice_rule(selection)
    assert choice == ("clear" if probabilities[0] >= CLEAR_PROBABILITY and low > 0 else "unclear")
    assert choice == choice_rule(_synthetic(probabilities, low, list(range(len(weights)))))
    surer = _synthetic([min(1.0, probabilities[0] + more), *probabilities[1:]], low + more, order)
    if choice == "clear":
        assert choice_rule(surer) == "clear"  # more certainty never makes a clear choice unclear
    verdict = bridge_verdict(selection)
    assert verdict.chosen in verdict.headline
    assert verdict.headline.startswith("No clear choice") == (choice == "unclear")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=5, max_size=60))
def test_helped_and_hurt_swap_with_the_conditions(pairs):
    zero = [a for a, _ in pairs]
    bridged = [b for _, b in pairs]
    selection = _synthetic([0.9, 0.1], 0.1, [0, 1])
    forward = bridge_verdict(selection, bli_summary(zero, bridged, bridge="b0", n_resamples=200))
    backward = bridge_verdict(selection, bli_summary(bridged, zero, bridge="b0", n_resamples=200))
    # Swapping the conditions negates the difference; the bootstrap's draws are not mirrored
    # exactly (the multinomial sees the discordant kinds in the other order), so an interval
    # that touches 0 may say "cannot tell" one way round: the direction may vanish, never flip.
    swap = {"helped": "hurt", "hurt": "helped"}
    if forward.effect in swap:
        assert backward.effect in (swap[forward.effect], "cannot tell")
    if backward.effect in swap:
        assert forward.effect in (swap[backward.effect], "cannot tell")
    if zero == bridged:
        assert forward.effect == "cannot tell"


def test_no_clear_choice_never_calls_a_bridge_chosen(tied_selection):
    """Issue 30: the Answer said "No clear choice" while a line below said "Chosen bridge"."""
    verdict = bridge_verdict(tied_selection, bli_summary([1, 0], [1, 1], bridge="none-of-these"))
    assert verdict.choice == "unclear" and verdict.to_dict()["label"] == "ranked first"
    assert verdict.lines[0].startswith(f"Ranked first for s->t: {verdict.chosen}, effect ")
    assert "the bridge ranked first" in verdict.headline
    assert "chosen" not in verdict.text().lower()
    assert "'s" not in verdict.headline  # "overlap it's" read as "it is" for the bridge "it"
    no_interval = replace(tied_selection, bootstrap=None)
    assert "chosen" not in bridge_verdict(no_interval).text().lower()
    assert first_place("clear") == first_place("one candidate") == "chosen"


def test_p_values_and_intervals_follow_the_number_rule(tied_selection):
    verdict = bridge_verdict(tied_selection)
    n_random = tied_selection.parameters["n_random"]
    p = p_is(tied_selection.pvalues[verdict.chosen], floor=permutation_floor(n_random))
    assert f"({p} against {n_random} random neuron sets" in verdict.lines[0]
    interval = re.search(r"interval (\S+) to (\S+)\.", verdict.lines[0]).groups()
    z = re.search(r"effect (\S+) ", verdict.lines[0]).group(1)
    assert len({len(x.split(".")[-1]) for x in (z, *interval)}) == 1  # the same decimals
