"""Top-activating contexts (issue 29): the streamed top-k equals a brute-force top-k over every
token's activation, with ties, across batches, resumed runs and merges; the token it marks is the
token whose activation it reports."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.errors import InputError
from neuronoverlap.probes import flores_sentences, open_writer, record_corpus
from neuronoverlap.probes.topk import TopActivations, empty_top, merge_top
from neuronoverlap.store.verify import verify_store


def brute_top(values: np.ndarray, positions: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Top-k of per-sample maxima [layer, neuron, sample] by (value desc, sample asc)."""
    n = values.shape[-1]
    sample = np.broadcast_to(np.arange(n, dtype=np.int32), values.shape)
    order = np.lexsort((sample, -values), axis=-1)[..., :k]
    top = {
        "value": np.take_along_axis(values, order, -1).astype(np.float32),
        "sample": np.take_along_axis(sample, order, -1),
        "position": np.take_along_axis(positions, order, -1).astype(np.int32),
    }
    if n < k:
        pad = empty_top(*values.shape[:-1], k - n)
        top = {key: np.concatenate([top[key], pad[key]], -1) for key in top}
    empty = top["value"] == -np.inf
    top["sample"] = np.where(empty, -1, top["sample"])
    top["position"] = np.where(empty, -1, top["position"])
    return top


def assert_same_top(got: dict, expected: dict) -> None:
    for key in ("value", "sample", "position"):
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


# --- the streaming rule on hand-made activations (ties, padding, empty rows) ------------------
@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    k=st.integers(1, 6),
    n_batches=st.integers(1, 4),
    batch=st.integers(1, 5),
    width=st.integers(1, 6),
    aligned=st.booleans(),
)
def test_streamed_top_k_equals_brute_force_with_ties(data, k, n_batches, batch, width, aligned):
    """`aligned`: left padding only (a corpus forward: the fast path); else any count mask (the
    probes' 'answer' rule), positions then counted from the row's start."""
    n_layers, d_mlp = 2, 3
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    top = TopActivations(n_layers, d_mlp, k)
    maxima, argmax = [], []
    for _ in range(n_batches):
        # few distinct values: ties within and across samples and batches are common
        acts = rng.integers(-2, 3, size=(n_layers, batch, width, d_mlp)).astype(np.float32) / 2
        if aligned:
            lengths = rng.integers(0, width + 1, size=batch)  # left padded; 0: nothing counted
            mask = np.arange(width)[None, :] >= (width - lengths)[:, None]
            offsets = width - lengths
        else:
            mask = rng.random((batch, width)) < 0.6
            offsets = np.zeros(batch, dtype=np.int64)
        for layer in range(n_layers):
            top.consume(layer, torch.from_numpy(acts[layer]), torch.from_numpy(mask))
        top.end_batch(torch.from_numpy(offsets))
        for row in range(batch):
            counted = np.where(mask[row][None, :, None], acts[:, row], -np.inf)  # [layer, token, neuron]
            real = counted[:, offsets[row] :, :]
            if not mask[row].any():
                maxima.append(np.full((n_layers, d_mlp), -np.inf, np.float32))
                argmax.append(np.zeros((n_layers, d_mlp), np.int64))
            else:
                maxima.append(real.max(axis=1))
                argmax.append(real.argmax(axis=1))  # the first position of the maximum
    expected = brute_top(np.stack(maxima, -1), np.stack(argmax, -1), k)
    assert_same_top(top.result(), expected)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 5), n=st.integers(1, 12), parts=st.integers(1, 4))
def test_top_k_of_top_ks_is_exact(seed, k, n, parts):
    rng = np.random.default_rng(seed)
    values = (rng.integers(-3, 4, size=(2, 3, n)) / 2).astype(np.float32)  # ties
    positions = rng.integers(0, 9, size=(2, 3, n))
    expected = brute_top(values, positions, k)
    cuts = np.sort(rng.integers(0, n + 1, size=parts - 1))
    pieces = []
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        part = brute_top(values[..., lo:hi], positions[..., lo:hi], k)
        part["sample"] = np.where(part["sample"] >= 0, part["sample"] + lo, -1)
        pieces.append(part)
    rng.shuffle(pieces)  # the order parts arrive in does not matter
    assert_same_top(merge_top(pieces, k), expected)


def test_k_below_one_is_refused():
    with pytest.raises(InputError, match="--top-k must be at least 1"):
        TopActivations(2, 3, 0)


# --- a real model: tiny-llama on FLORES sentences ----------------------------------------------
class Collect:
    """Every token's activation of one forward: [layer] -> (activation, mask)."""

    def __init__(self):
        self.layers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def consume(self, layer, activation, count_mask):
        self.layers[layer] = (activation.float().numpy().copy(), count_mask.numpy().copy())


def brute_force_corpus(model, sentences, batch_size, k):
    """Per-sentence maxima from every token's activation, forwarding the recorder's batches."""
    maxima, argmax = [], []
    for start in range(0, len(sentences), batch_size):
        collect = Collect()
        model.forward_activations(sentences[start : start + batch_size], collect)
        acts = np.stack([collect.layers[layer][0] for layer in range(model.n_layers)])
        mask = collect.layers[0][1]
        for row in range(acts.shape[1]):
            real = acts[:, row, mask[row], :]  # [layer, token, neuron]
            maxima.append(real.max(axis=1))
            argmax.append(real.argmax(axis=1))
    return brute_top(np.stack(maxima, -1), np.stack(argmax, -1), k)


def stored_top(path, lang):
    with h5py.File(path, "r") as f:
        g = f[f"tiny-llama/corpora/{lang}/contexts"]
        return {key: g[key][()] for key in ("value", "sample", "position")}, g["text_tokens"][()]


@pytest.fixture(scope="module")
def corpus_run(tiny_llama, tmp_path_factory):
    """de: 9 FLORES sentences plus repeats (ties across sentences), batches of 4, k = 5."""
    sentences, params = flores_sentences("de", 9)
    sentences = sentences + [sentences[2], sentences[5], sentences[2]]
    params = {**params, "n_sentences": len(sentences), "data_sha256": "with repeats"}
    path = tmp_path_factory.mktemp("topk") / "run.h5"
    with open_writer(path, tiny_llama) as writer:
        record_corpus(tiny_llama, writer, "de", sentences, params, batch_size=4, progress=False, top_k=5)
    return path, sentences, params


def test_stored_top_k_equals_brute_force_on_tiny_llama(tiny_llama, corpus_run):
    path, sentences, _ = corpus_run
    expected = brute_force_corpus(tiny_llama, sentences, 4, 5)
    got, text_tokens = stored_top(path, "de")
    assert_same_top(got, expected)
    ties = np.diff(got["value"], axis=-1) == 0
    assert ties.any(), "repeated sentences should tie somewhere in the top-k"
    assert verify_store(path).ok
    # every sentence's token count is the tokenizer's, and positions fall inside it
    assert text_tokens.tolist() == [len(tiny_llama.tokenizer(s)["input_ids"]) for s in sentences]


def test_the_marked_token_is_the_one_whose_activation_is_reported(tiny_llama, corpus_run):
    """Forward each top sentence alone (no padding): the activation at the stored position is the
    stored value, and the sentence's largest."""
    path, sentences, _ = corpus_run
    got, _ = stored_top(path, "de")
    rng = np.random.default_rng(0)
    picks = zip(rng.integers(0, 4, 12), rng.integers(0, 256, 12), rng.integers(0, 5, 12), strict=True)
    for layer, neuron, slot in picks:
        sample, position = got["sample"][layer, neuron, slot], got["position"][layer, neuron, slot]
        collect = Collect()
        tiny_llama.forward_activations([sentences[sample]], collect)
        acts = collect.layers[layer][0][0, :, neuron]
        assert acts[position] == pytest.approx(got["value"][layer, neuron, slot], abs=1e-4)
        assert acts[position] == pytest.approx(acts.max(), abs=1e-4)


def test_a_resumed_corpus_equals_an_uninterrupted_one(tiny_llama, corpus_run, tmp_path, monkeypatch):
    path, sentences, params = corpus_run
    resumed = tmp_path / "resumed.h5"
    real = tiny_llama.forward_activations
    calls = {"n": 0}

    def dies_on_the_third_batch(prompts, consumer):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(prompts, consumer)

    monkeypatch.setattr(tiny_llama, "forward_activations", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt), open_writer(resumed, tiny_llama) as writer:
        record_corpus(
            tiny_llama, writer, "de", sentences, params, batch_size=4, commit_every=1, progress=False, top_k=5
        )
    monkeypatch.setattr(tiny_llama, "forward_activations", real)
    with open_writer(resumed, tiny_llama) as writer:
        status = record_corpus(
            tiny_llama, writer, "de", sentences, params, batch_size=4, progress=False, top_k=5
        )
    assert status == "resumed"
    assert_same_top(stored_top(resumed, "de")[0], stored_top(path, "de")[0])


# --- probe sets: top-k over samples, from the teacher-forced recording pass --------------------
def test_probe_set_top_k_equals_brute_force_on_tiny_llama(tiny_llama, tmp_path):
    from neuronoverlap.models import StopRule, generate_greedy
    from neuronoverlap.options import ProbeOptions
    from neuronoverlap.probes import record_probe_set, translation_probe_sets

    de_fr, _ = translation_probe_sets("de", "fr", 10, seed=0)
    stop = StopRule(max_new_tokens=3)
    path = tmp_path / "run.h5"
    with open_writer(path, tiny_llama) as writer:
        record_probe_set(tiny_llama, writer, de_fr, batch_size=4, stop=stop, progress=False, top_k=6)
    maxima, argmax = [], []
    for start in range(0, 10, 4):
        collect = Collect()
        prompts, spans = de_fr.prompts[start : start + 4], de_fr.word_spans()[start : start + 4]
        # the recorder's default count rule (the word's and the answer's tokens)
        gens = generate_greedy(tiny_llama, prompts, stop, collect, count=ProbeOptions.count, word_spans=spans)
        acts = np.stack([collect.layers[layer][0] for layer in range(tiny_llama.n_layers)])
        mask = collect.layers[0][1]  # [row, pos]: the counted positions
        for row, generation in enumerate(gens):
            first = acts.shape[2] - len(generation.fed_ids)  # left padding: the first real token
            counted = np.flatnonzero(mask[row])
            real = acts[:, row, counted, :]
            maxima.append(real.max(axis=1))
            argmax.append(counted[real.argmax(axis=1)] - first)  # from the sample's first token
    with h5py.File(path, "r") as f:
        g = f["tiny-llama/probes/de-fr/contexts"]
        got = {key: g[key][()] for key in ("value", "sample", "position")}
        assert g.attrs["unit"] == "sample" and "token_spans" not in g
    assert_same_top(got, brute_top(np.stack(maxima, -1), np.stack(argmax, -1), 6))
    assert verify_store(path).ok


def test_verify_reports_contexts_out_of_order_or_out_of_range(corpus_run, tmp_path):
    """Beyond checksums (a writer that sealed bad data): order, empty slots, indices in range."""
    import shutil

    from neuronoverlap.store import checksums

    path, _, _ = corpus_run
    for damage, expected in [
        (lambda g: g["value"].__setitem__((0, 0, 0), -5.0), "value: not in descending order"),
        (lambda g: g["sample"].__setitem__((1, 2, 0), 999), "sample: an index outside 0..11"),
        (lambda g: g["position"].__setitem__((1, 2, 0), -1), "empty slots disagree"),
    ]:
        copy = tmp_path / "damaged.h5"
        shutil.copy(path, copy)
        with h5py.File(copy, "r+") as f:
            g = f["tiny-llama/corpora/de/contexts"]
            damage(g)
            checksums.seal_new(f, set())
        report = verify_store(copy)
        lines = [f"{name}: {reason}" for name, reason in report.damaged.items()]
        assert not report.ok and any(expected in line for line in lines), lines
