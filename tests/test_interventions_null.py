"""The null of `set_effect`: attribution patching against the exact effect, calibration of the
empirical p-value under the null, power on a planted effect, the band-matched sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from neuronoverlap import InputError, intervene
from neuronoverlap.interventions import (
    attribution_scores,
    continuation_texts,
    random_sets,
    score_texts,
    sentence_texts,
)
from neuronoverlap.interventions.effects import NullOptions, set_effect
from neuronoverlap.interventions.null import empirical_pvalue, probability_bands
from neuronoverlap.models import load_model
from neuronoverlap.sets import NeuronSet

SENTENCES = [
    "Der Hund läuft schnell nach Hause.",
    "Le chat dort sur le canapé.",
    "The weather is nice today.",
    "El niño come una manzana.",
]


@pytest.fixture(scope="module")
def texts(tiny_llama):
    return sentence_texts(tiny_llama, SENTENCES)


@pytest.fixture(scope="module")
def tiny_llama_64():
    """tiny-llama in float64: first-order checks need differences far above rounding. (Scored one
    text at a time: the bridge's float64 attention gives NaN on left-padded rows.)"""
    from transformer_lens.model_bridge import TransformerBridge

    from neuronoverlap.models.interface import NeuronModel
    from neuronoverlap.models.tiny import build_tiny_hf_model, tiny_tokenizer

    hf_model = build_tiny_hf_model("llama").to(torch.float64)
    tokenizer = tiny_tokenizer()
    bridge = TransformerBridge.boot_transformers("tiny-llama", hf_model=hf_model, tokenizer=tokenizer)
    return NeuronModel(bridge.eval(), tokenizer, name="tiny-llama-float64")


def exact_change(model, texts, neurons, kind, **options):
    base = score_texts(model, texts, batch_size=1).mean()
    with intervene(model, neurons, kind, **options):
        return score_texts(model, texts, batch_size=1).mean() - base


def test_attribution_equals_the_exact_effect_in_the_linear_limit(tiny_llama_64, texts):
    """scale = 1 + eps: the estimate is the exact effect's derivative. The central difference
    removes the second-order term (the model computes its RMSNorm in float32, so differences
    below ~1e-7 are rounding); the one-sided error shrinks with eps."""
    model = tiny_llama_64
    neurons = NeuronSet.from_indices([(0, 9), (1, 3), (1, 99), (2, 200), (3, 31)], shape=(4, 256))
    errors = []
    for eps in (1e-2, 1e-3):
        estimate = attribution_scores(model, texts, "scale", factor=1 + eps, batch_size=1)[neurons.mask].sum()
        up = exact_change(model, texts, neurons, "scale", factor=1 + eps)
        down = exact_change(model, texts, neurons, "scale", factor=1 - eps)
        assert estimate == pytest.approx((up - down) / 2, rel=1e-2)
        errors.append(abs(estimate - up) / abs(up))
    assert errors[1] < errors[0] / 3


def test_attribution_of_add_and_value(tiny_llama_64, texts):
    model = tiny_llama_64
    neurons = [(1, 3), (2, 7)]
    direction = np.random.default_rng(1).normal(size=(4, 256)) * 1e-2
    estimate = attribution_scores(model, texts, "add", values=direction, batch_size=1)
    up = exact_change(model, texts, neurons, "add", values=direction)
    down = exact_change(model, texts, neurons, "add", values=-direction)
    assert sum(estimate[n] for n in neurons) == pytest.approx((up - down) / 2, rel=1e-2)
    value = np.full((4, 256), 2.0)  # a large step: the first-order estimate keeps the sign
    estimate = attribution_scores(model, texts, "value", values=value, batch_size=1)
    exact = exact_change(model, texts, neurons, "value", values=value)
    assert abs(exact) > 1e-4 and np.sign(sum(estimate[n] for n in neurons)) == np.sign(exact)


def wired_model(layer: int, neurons: list[int], token: int, strength: float):
    """tiny-llama whose neurons `neurons` of `layer` always write the unembedding of `token`:
    up row = gate row makes act_fn(g) * up = g^2 sigmoid(g) >= 0, and the down columns point
    along the token's unembedding."""
    model = load_model("tiny-llama")
    hf = model.backend.original_model
    mlp = hf.model.layers[layer].mlp
    direction = hf.lm_head.weight[token] / hf.lm_head.weight[token].norm()
    with torch.no_grad():
        for j in neurons:
            mlp.up_proj.weight[j] = mlp.gate_proj.weight[j]
            mlp.down_proj.weight[:, j] = strength * direction
    return model


def test_a_planted_effect_is_detected_and_its_sign_estimated():
    token = 300
    planted = [5, 40, 77, 130, 190, 250]
    model = wired_model(2, planted, token, strength=3.0)
    word = model.tokenizer.decode([token])
    prompts = [f"{s} Next:" for s in SENTENCES] + ["English: water\nDeutsch:", "A B C"]
    texts = continuation_texts(model, prompts, [word] * len(prompts))
    assert all(seq[-1] == token for seq in texts.sequences)
    neurons = NeuronSet.from_indices([(2, j) for j in planted], shape=(4, 256), label="wired")
    rng = np.random.default_rng(0)
    result = set_effect(
        model,
        texts,
        neurons,
        probability=rng.random((4, 256)),
        options=NullOptions(exact_sets=20, attribution_sets=1000),
    )
    assert result.effect > 0 and result.attribution > 0  # switching the writers off hurts the token
    assert result.interval[0] > 0
    assert result.p_exact == pytest.approx(1 / 21)
    assert result.p_attribution == pytest.approx(1 / 1001)
    assert result.z_exact > 5
    assert max(result.null_exact) < result.effect
    assert result.agreement_r > 0.9
    assert set(result.per_layer) == {2} and result.layer_counts == {2: 6}


def test_an_unwired_set_is_not_detected(tiny_llama, texts):
    rows = random_sets(NeuronSet.from_indices([(1, 0), (2, 0)], shape=(4, 256)), 1, seed=3)
    neurons = NeuronSet(np.isin(np.arange(1024), rows[0]).reshape(4, 256), "random")
    result = set_effect(
        tiny_llama, texts, neurons, options=NullOptions(exact_sets=20, attribution_sets=200, seed=5)
    )
    assert result.p_exact > 0.05 and result.p_attribution > 0.05


def null_pvalues(scores, probability, n_bands, pick, n_draws=500):
    """p-values of `n_draws` target sets (4 neurons in each of layers 1, 2, drawn by `pick`)
    against 199 random sets matched with `n_bands` bands."""
    rng = np.random.default_rng(0)
    pvalues = []
    for draw in range(n_draws):
        mask = np.zeros(scores.shape, dtype=bool)
        for layer in (1, 2):
            mask[layer, pick(rng, layer)] = True
        rows = random_sets(NeuronSet(mask), 199, probability=probability, n_bands=n_bands, seed=draw)
        pvalues.append(empirical_pvalue(scores[mask].sum(), scores.ravel()[rows].sum(1)))
    return np.array(pvalues)


@pytest.mark.slow
def test_the_pvalue_of_a_random_set_is_uniform_under_the_null(tiny_llama, texts):
    """500 random target sets, each against 199 band-matched random sets: the attribution null's
    p-values are uniform. The bands come from a probability that tracks the effect's size, so the
    matching matters: targets drawn from the top band, tested against a null that ignores the
    bands, are not uniform (and against the banded null they are)."""
    scores = attribution_scores(tiny_llama, texts, "zero")
    rng = np.random.default_rng(0)
    probability = -scores + rng.random(scores.shape) * np.abs(scores).mean()
    uniform = null_pvalues(scores, probability, 10, lambda r, layer: r.choice(256, size=4, replace=False))
    assert stats.kstest(uniform, "uniform").pvalue > 0.01
    assert stats.binomtest(int((uniform <= 0.05).sum()), len(uniform), 0.05).pvalue > 0.01

    top = probability_bands(probability, scores.shape, 10) == 9
    from_top = lambda r, layer: r.choice(np.flatnonzero(top[layer]), size=4, replace=False)  # noqa: E731
    assert stats.kstest(null_pvalues(scores, probability, 10, from_top, 200), "uniform").pvalue > 0.01
    assert stats.kstest(null_pvalues(scores, probability, 1, from_top, 200), "uniform").pvalue < 1e-6


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 63)), min_size=1, max_size=20, unique=True),
    st.integers(1, 8),
    st.integers(0, 10_000),
)
def test_random_sets_match_size_per_layer_and_band(pairs, n_bands, seed):
    shape = (4, 64)
    named = NeuronSet.from_indices(pairs, shape=shape)
    probability = np.random.default_rng(seed).random(shape)
    bands = probability_bands(probability, shape, n_bands)
    rows = random_sets(named, 30, probability=probability, n_bands=n_bands, seed=seed)
    assert rows.shape == (30, len(named))
    cells = np.arange(4)[:, None] * n_bands + bands

    def cell_counts(flat_ids):
        return np.bincount(cells.ravel()[flat_ids], minlength=4 * n_bands)

    wanted = cell_counts(np.flatnonzero(named.mask))
    for row in rows:
        assert len(np.unique(row)) == len(row)
        assert (cell_counts(row) == wanted).all()


def test_bands_are_equal_count_within_each_layer():
    probability = np.random.default_rng(0).random((3, 100))
    bands = probability_bands(probability, (3, 100), 10)
    for layer in range(3):
        assert (np.bincount(bands[layer]) == 10).all()
        order = np.argsort(probability[layer])
        assert (np.diff(bands[layer][order]) >= 0).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, t: set_effect(m, t, NeuronSet.empty((4, 256))), "is empty"),
        (lambda m, t: set_effect(m, t, [(0, 1)], kind="value", values=[1.0]), "[n_layers, d_mlp] array"),
        (lambda m, t: set_effect(m, t, [(0, 1)], options=NullOptions(alternative="up")), "alternative"),
        (lambda m, t: attribution_scores(m, t, "mean"), "needs values"),
        (lambda m, t: attribution_scores(m, t, "scale", factor=np.full((4, 256), np.nan)), "NaN"),
        (lambda m, t: random_sets(NeuronSet.from_indices([(0, 1)], shape=(4, 256)), 0), "at least one"),
    ],
)
def test_bad_input_is_one_line(tiny_llama, texts, call, message):
    with pytest.raises(InputError) as caught:
        call(tiny_llama, texts)
    assert message in str(caught.value) and "\n" not in str(caught.value)
