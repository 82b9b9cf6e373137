"""The direction-aware target share (issue 26) and its rule in the study."""

from __future__ import annotations

import numpy as np
import pytest

from neuronoverlap.bridge.target import target_share, target_specific
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.study import PairData, fixed_choice, held_out_regret, pool, simulate_pair
from neuronoverlap.sets import NeuronSet

SHAPE = (2, 100)


def _set(indices):
    return NeuronSet.from_indices([(0, j) for j in indices], SHAPE)


def test_target_share_counts_the_bridge_neurons_among_the_targets_own():
    specific = _set(range(10, 20))
    shares = target_share({"a": _set([10, 11, 50, 51]), "b": _set([60]), "c": _set([])}, specific)
    assert shares == {"a": 0.5, "b": 0.0, "c": None}
    with pytest.raises(InputError, match="S_t"):
        target_share({"a": NeuronSet.from_indices([(0, 1)], (3, 100))}, specific)


def test_the_targets_own_neurons_leave_out_the_always_on_and_the_shared():
    rng = np.random.default_rng(0)
    probabilities = {x: rng.uniform(0, 0.3, SHAPE) for x in ("de", "fr", "it")}
    for x in probabilities:
        probabilities[x][0, :5] = 0.99  # always on in every language
    probabilities["fr"][1, 40:42] = 0.8  # fr's own
    probabilities["fr"][1, 60] = probabilities["it"][1, 60] = 0.8  # shared by fr and it
    specific = target_specific(probabilities, "fr", top_rate=0.02)
    chosen = set(specific.to_list())
    assert {(1, 40), (1, 41)} <= chosen
    assert not chosen & {(0, j) for j in range(5)} and (1, 60) not in chosen
    with pytest.raises(InputError, match="unknown target-specific rule"):
        target_specific(probabilities, "fr", rule="magic")


def test_the_target_share_rule_of_the_study_picks_the_largest_share():
    rng = np.random.default_rng(1)
    pair = simulate_pair([0.2, 0.5, 0.3], 200, rng)
    pair = PairData(
        pair.src, pair.tgt, pair.bridges, pair.hits, target_share={"en": 0.1, "de": 0.4, "fr": 0.2}
    )
    assert fixed_choice(pair, "target-share") == "de"
    regret = held_out_regret(pair, n_splits=50)
    towards_en = PairData(
        pair.src, pair.tgt, pair.bridges, pair.hits, target_share={"en": 0.9, "de": 0.4, "fr": 0.2}
    )
    assert held_out_regret(towards_en, n_splits=50)["target-share"] == regret["english"]
    assert abs(regret["target-share"]) < 0.05  # de is the best bridge here
    summary = pool([pair], n_splits=20, n_bootstrap=50)
    assert "target-share" in summary.rules
    with pytest.raises(InputError, match="target shares"):
        PairData(pair.src, pair.tgt, pair.bridges, pair.hits, target_share={"en": 0.1})


def test_target_shares_from_a_store(tiny_store_template):
    from neuronoverlap.bridge import bridge_sets
    from neuronoverlap.bridge.target import store_target_shares
    from neuronoverlap.store import Store

    store = Store(tiny_store_template)
    shares = store_target_shares(store, "de", "fr", ["en"], top_rate=0.05)
    _, specific = bridge_sets(store, "de", "fr", ["en"], 0.05)
    probabilities = {x: store.corpus(x).activation_probability() for x in ("de", "fr", "en")}
    own = target_specific(probabilities, "fr", top_rate=0.05)
    assert shares == target_share(specific, own)
    assert shares["en"] is None or 0 <= shares["en"] <= 1
    # direction-aware: the other target's own neurons give another share in general
    assert set(store_target_shares(store, "fr", "de", ["en"], top_rate=0.05)) == {"en"}
