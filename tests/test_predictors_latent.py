"""The logit lens (predictors/latent.py): on a tiny LLaMA whose blocks write nothing and whose
unembedding is built so that the answer's probability is known in closed form; the last layer's
lens equals the model's own next-token distribution; the profile, its typed result and the
`latent` command on real dictionaries."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.models import load_model
from neuronoverlap.models.generation import next_token_log_probs
from neuronoverlap.predictors.latent import (
    LatentProfile,
    language_masses,
    latent_profile,
    latent_window,
    lens_probabilities,
    prefix_tokens,
    token_weights,
)
from neuronoverlap.store import Store


@pytest.fixture(scope="module")
def built():
    """A tiny LLaMA whose attention and MLP outputs are zero (the residual stream is the last
    token's embedding at every layer), that embedding is a * e_0, the final norm's weight is 1,
    and the unembedding gives `answer` tokens the logit c * sqrt(d) and every other token 0."""
    model = load_model("tiny-llama")
    hf = model.backend.original_model
    d = hf.config.hidden_size
    prompt = "Deutsch: Hund\nFrançais:"
    weights = token_weights(model.tokenizer, {"fr": ["chien"], "de": ["und"]})
    answer = list(weights["fr"])
    c = 0.5
    with torch.no_grad():
        for layer in hf.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        last = model.encode([prompt]).input_ids[0, -1]
        hf.model.embed_tokens.weight[last] = 0
        hf.model.embed_tokens.weight[last, 0] = 3.0
        hf.model.norm.weight.fill_(1.0)
        hf.lm_head.weight.zero_()
        hf.lm_head.weight[answer, 0] = c
    logit = c * 3.0 / math.sqrt(9.0 / d + hf.config.rms_norm_eps)  # RMSNorm of 3 e_0, then c e_0
    mass = {lang: len(w) * math.exp(logit if lang == "fr" else 0.0) for lang, w in weights.items()}
    expected = {lang: m / (mass["fr"] + hf.config.vocab_size - len(answer)) for lang, m in mass.items()}
    return model, prompt, weights, expected


def test_lens_reads_the_built_unembedding_at_every_layer(built):
    model, prompt, weights, expected = built
    assert set(weights["fr"]).isdisjoint(weights["de"]) and weights["fr"] and weights["de"]
    masses = language_masses(model, [prompt], [weights], ["fr", "de"])[0]
    assert masses[0] == pytest.approx(np.full(model.n_layers, expected["fr"]), rel=1e-5)
    assert masses[1] == pytest.approx(np.full(model.n_layers, expected["de"]), rel=1e-5)
    assert expected["fr"] > 0.05 > expected["de"]


def test_last_layer_lens_is_the_models_next_token_distribution(tiny_llama):
    prompts = ["Deutsch: Hund\nFrançais:", "a b c"]
    lens = lens_probabilities(tiny_llama, prompts)
    assert lens.shape == (2, tiny_llama.n_layers, tiny_llama.backend.cfg.d_vocab)
    assert torch.allclose(lens[:, -1].log(), next_token_log_probs(tiny_llama, prompts), atol=1e-4)


def test_prefix_token_rule(tiny_llama):
    tok = tiny_llama.tokenizer
    ids = prefix_tokens(tok, "und")
    spelled = {tok.decode([i]) for i in ids}
    assert spelled == {"un", "und", " un", " und"}  # the tiny tokenizer's tokens
    shared = token_weights(tok, {"de": ["und"], "nl": ["en", "und"]})
    assert all(w == 0.5 for w in shared["de"].values())  # every token of "und" is in both sets


def test_profile_on_real_dictionaries_and_its_rule(tiny_llama):
    profile = latent_profile(tiny_llama, "de", "fr", ["en", "it"], n=6, n_bootstrap=50, progress=False)
    assert profile.languages == ("fr", "en", "it") and len(profile.words) == 6
    assert profile.window == (2,)  # L//2 .. L-2 of 4 layers
    for i in range(3):
        assert all(
            lo <= m <= hi for lo, m, hi in zip(profile.low[i], profile.mean[i], profile.high[i], strict=True)
        )
    scores = profile.scores()
    assert scores["en"] == pytest.approx(profile.mean[1][2])
    assert latent_window(18) == list(range(9, 17)) and latent_window(32) == list(range(16, 31))
    assert LatentProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    with pytest.raises(InputError, match="exclude"):
        latent_profile(tiny_llama, "de", "fr", ["fr"], n=2)


floats = st.floats(0, 1, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.data())
def test_latent_profile_round_trip(n_layers, n_langs, data):
    rows = st.lists(
        st.lists(floats, min_size=n_layers, max_size=n_layers), min_size=n_langs, max_size=n_langs
    )
    langs = tuple(["fr", "en", "de", "it"][:n_langs])
    profile = LatentProfile(
        model="m",
        src="fi",
        tgt=langs[0],
        languages=langs,
        candidates=langs[1:],
        layers=tuple(range(n_layers)),
        window=(0,),
        words=tuple(data.draw(st.lists(st.text(min_size=1), max_size=3))),
        mean=tuple(tuple(r) for r in data.draw(rows)),
        low=tuple(tuple(r) for r in data.draw(rows)),
        high=tuple(tuple(r) for r in data.draw(rows)),
    )
    assert LatentProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    assert profile.key == f"latent-fi-{langs[0]}"


def test_latent_command(tmp_path, capsys, tiny_store_template):
    out, store = tmp_path / "latent", tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    args = ["latent", "--model", "tiny-llama", "--pair", "de-fr", "--bridges", "en,it", "-n", "4"]
    assert main([*args, "--bootstrap", "20", "--out", str(out), "--store", str(store), "--quiet"]) == 0
    kept = LatentProfile.from_dict(Store(store).get_json("results", "latent-de-fr"))
    assert kept.candidates == ("en", "it") and len(kept.words) == 4
    saved = json.loads((out / "latent-de-fr.json").read_text(encoding="utf-8"))
    assert saved["kind"] == "latent" and saved["candidates"] == ["en", "it"]
    assert (out / "latent-de-fr.png").read_bytes()[:4] == b"\x89PNG"
    assert "latent rule" in capsys.readouterr().out
    assert main(["latent", "--model", "tiny-llama", "--pair", "de-xx", "--out", str(out)]) == 2
    assert main([*args[:-4], "--bridges", "de,en", "--out", str(out)]) == 2
    assert "exclude" in capsys.readouterr().err
