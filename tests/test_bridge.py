"""Bridge selection from a store: window, a planted dependence, the arrays path, the typed result
and a real tiny-model store (statistical properties: tests/test_bridge_inference.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuronoverlap.bridge import (
    BridgeSelection,
    bridge_sets,
    layer_window,
    pair_activations,
    pair_units,
    select_bridge,
    select_from_activations,
)
from neuronoverlap.bridge.loader import SetResampler, pair_activity, pair_nuisance
from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.hsic import reference_bridge_score
from neuronoverlap.numbers import permutation_floor, probability, pvalue
from neuronoverlap.report.verdict import first_place_line
from neuronoverlap.store import ModelInfo, Store, StoreWriter

N_LAYERS, D_MLP, N = 4, 50, 40


def test_default_window_maps_to_the_reference_layers():
    assert layer_window(32) == list(range(10, 22))  # LLaMA-3-8B: layers 10-21
    assert layer_window(18) == list(range(6, 12))  # Gemma-3-270M
    assert layer_window(18, layers=[3, 2, 3]) == [2, 3]
    with pytest.raises(InputError):
        layer_window(18, layers=[18])
    with pytest.raises(InputError):
        layer_window(18, fractions=(0.7, 0.2))


def _write_probe_set(writer, src, tgt, hot, mean):
    rng = np.random.default_rng(hash((src, tgt)) % 2**32)
    # Fire counts of 10 tokens (the store keeps exact counts): rates 0 to 0.3, hot neurons 0.9.
    prob = (rng.integers(0, 4, size=(N, N_LAYERS, D_MLP)) / 10).astype(np.float32)
    for layer, neuron in hot:
        prob[:, layer, neuron] = 0.9
    params = {"src": src, "tgt": tgt, "n_samples": N, "template": "synthetic"}
    journal = writer.probe_journal(src, tgt, params)
    strings = np.array([f"{src}->{tgt} {i}" for i in range(N)])
    journal.add_block(
        0,
        mean=mean.astype(np.float32),
        prob=prob,
        tokens=np.full(N, 10, np.int32),
        prompts=strings,
        generations=strings,
        source_words=np.array([f"{src}-word-{i}" for i in range(N)]),
        target_words=np.array([f"{tgt}-word-{i}" for i in range(N)]),
    )
    writer.finish_probe_set(src, tgt)


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory):
    """b1's specific neurons depend non-linearly on the overlap neurons; b2's do not."""
    path = tmp_path_factory.mktemp("planted") / "planted.h5"
    rng = np.random.default_rng(0)
    overlap = [(layer, j) for layer in (1, 2) for j in range(5)]
    b1 = [(layer, 10 + j) for layer in (1, 2) for j in range(5)]
    b2 = [(layer, 20 + j) for layer in (1, 2) for j in range(5)]
    info = ModelInfo("synthetic", "synthetic@0", N_LAYERS, D_MLP)
    with StoreWriter(path, info) as writer:
        for src, tgt in (("zh", "ja"), ("ja", "zh")):
            mean = rng.normal(size=(N, N_LAYERS, D_MLP))
            latent = rng.normal(size=(N, 1))
            for layer, j in overlap:
                mean[:, layer, j] = latent[:, 0] + 0.1 * rng.normal(size=N)
            for layer, j in b1:
                mean[:, layer, j] = latent[:, 0] ** 2 + 0.1 * rng.normal(size=N)
            _write_probe_set(writer, src, tgt, overlap, mean)
        for bridge, hot in (("en", b1), ("de", b2)):
            for other in ("zh", "ja"):
                for a, b in ((bridge, other), (other, bridge)):
                    _write_probe_set(writer, a, b, hot, rng.normal(size=(N, N_LAYERS, D_MLP)))
    return path


@pytest.mark.parametrize(
    ("method", "score"), [("calibrated", "reference"), ("calibrated", "cka"), ("reference", "reference")]
)
def test_planted_dependence_is_found(planted_store, method, score):
    result = select_bridge(
        planted_store,
        "zh",
        "ja",
        ["en", "de"],
        method=method,
        score=score,
        window=[1, 2],
        top_rate=0.05,
        n_random=199,
        n_bootstrap=50,
        n_permutations=99,
        seed=0,
        progress=False,
    )
    assert result.set_sizes["en"] == {1: [5, 5], 2: [5, 5]}
    assert result.chosen == "en" and result.ranking() == ["en", "de"]
    assert result.pvalues["en"] == pytest.approx(1 / 200)
    assert result.pvalues["de"] > 0.05
    assert result.permutation_pvalues["en"] == pytest.approx(1 / 100)
    assert result.bootstrap.selection_probability["en"] > 0.9
    assert sorted(result.per_layer["en"]) == [1, 2]  # keyed by real layer ids


def test_the_store_path_is_a_loader_over_the_arrays_path(planted_store):
    store = Store(planted_store)
    kwargs = {"n_random": 49, "n_bootstrap": 10, "seed": 3}
    from_store = select_bridge(
        store, "zh", "ja", ["en", "de"], window=[1, 2], top_rate=0.05, progress=False, **kwargs
    )
    overlap, specific = bridge_sets(store, "zh", "ja", ["en", "de"], top_rate=0.05)
    directions, units = pair_units(store, "zh", "ja")
    assert list(directions) == [0] * N + [1] * N and list(units) == list(range(N)) * 2
    from_arrays = select_from_activations(
        {layer: pair_activations(store, "zh", "ja", layer) for layer in (1, 2)},
        overlap,
        specific,
        src="zh",
        tgt="ja",
        directions=directions,
        units=units,
        activity={layer: pair_activity(store, "zh", "ja")[layer] for layer in (1, 2)},
        nuisance=pair_nuisance(store, "zh", "ja"),
        resample_sets=SetResampler(store, "zh", "ja", ["en", "de"], 0.05, None),
        **kwargs,
    )
    assert from_arrays.calibrated == from_store.calibrated
    assert from_arrays.effect == from_store.effect
    assert from_arrays.bootstrap == from_store.bootstrap
    assert from_store.bootstrap.sets_rebuilt and from_store.parameters["pool"] == "matched"
    assert from_store.overlap == overlap and from_store.bridges == specific


def test_the_result_reads_back(planted_store):
    result = select_bridge(
        planted_store,
        "zh",
        "ja",
        ["en", "de"],
        window=[0, 1, 2],
        top_rate=0.05,
        n_random=19,
        n_bootstrap=5,
        n_permutations=9,
        progress=False,
    )
    document = json.loads(json.dumps(result.to_dict()))
    back = BridgeSelection.from_dict(document)
    assert back.to_dict() == document
    assert back.overlap == result.overlap and back.bridges == result.bridges
    assert back.chosen == result.chosen and back.bootstrap == result.bootstrap
    # layer 0 holds no planted neurons: the same window for every bridge, shown per bridge
    assert document["window"] == [0, 1, 2]
    assert document["set_sizes"]["en"]["1"] == [5, 5]
    assert document["layers_scored"]["en"] == [1, 2]


def test_reference_score_per_layer_is_the_reference_formula(planted_store):
    store = Store(planted_store)
    result = select_bridge(
        store,
        "zh",
        "ja",
        ["en"],
        method="reference",
        window=[2],
        top_rate=0.05,
        n_random=9,
        n_bootstrap=0,
        progress=False,
        residualise=False,  # the reference code scores the activations as recorded
    )
    acts = np.concatenate([store.probes("zh", "ja").layer(2), store.probes("ja", "zh").layer(2)])
    expected = reference_bridge_score(acts[:, 0:5].T.astype(np.float64), acts[:, 10:15].T.astype(np.float64))
    assert result.per_layer["en"][2] == pytest.approx(expected, rel=1e-9)
    assert result.scores["en"] == pytest.approx(expected, rel=1e-9)
    assert result.reference_scores["en"] == pytest.approx(expected, rel=1e-9)


def test_bad_requests_are_clear(planted_store):
    with pytest.raises(InputError, match="lacks probe sets"):
        select_bridge(planted_store, "zh", "ja", ["fr"], window=[1], progress=False)
    with pytest.raises(InputError, match="cannot be the source"):
        select_bridge(planted_store, "zh", "ja", ["zh"], progress=False)
    with pytest.raises(InputError, match="unknown method"):
        select_bridge(planted_store, "zh", "ja", ["en"], method="magic", progress=False)
    with pytest.raises(InputError, match="n_random"):
        select_bridge(
            planted_store, "zh", "ja", ["en"], window=[1], top_rate=0.05, n_random=1, progress=False
        )
    with pytest.raises(InputError, match="no neurons in the window"):
        select_bridge(planted_store, "zh", "ja", ["en"], window=[3], top_rate=0.05, progress=False)


def test_select_bridge_command_on_tiny_model(tmp_path, capsys):
    store, out = tmp_path / "run.h5", tmp_path / "bridge.json"
    code = main(
        [
            "select-bridge",
            "--model",
            "tiny-llama",
            "--pair",
            "de-fr",
            "--bridges",
            "en,it",
            "-n",
            "8",
            "--max-new-tokens",
            "3",
            "--random-sets",
            "49",
            "--bootstrap",
            "20",
            "--store",
            str(store),
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert (
        result["chosen"] in ("en", "it")
        and f"  {first_place_line(BridgeSelection.from_dict(result))}\n" in printed
    )
    for b in ("en", "it"):  # the number rule: p to 2 digits, "< 0.02" at the floor of 49 random sets
        row = next(line for line in printed.splitlines() if line.split()[1:2] == [b])
        assert pvalue(result["pvalues"][b], floor=permutation_floor(49)) in row
        assert f" {probability(result['selection_probability'][b])}" in row  # then ±its Monte Carlo error
    assert set(result["per_layer"]["en"]) == {str(layer) for layer in result["window"]}
    assert result["parameters"]["model_fingerprint"] == Store(store).fingerprint
    assert abs(sum(result["selection_probability"].values()) - 1) < 1e-9
    assert "ranked by: effect" in printed and "p(Holm)" in printed
    assert result["method"] == "effect" and result["parameters"]["pool"] == "matched"
    assert result["near_tie"] in (True, False) and result["bootstrap"]["sets_rebuilt"]
    assert ("near tie:" in printed) == result["near_tie"]
    assert set(result["nuisance_r2"]) == {"overlap", "en", "it"}
    assert BridgeSelection.from_dict(result).chosen == result["chosen"]
    assert Store(store).get_json("results", "bridge-de-fr") == result
    reference = ["select-bridge", "--pair", "de-fr", "--bridges", "en,it", "--store", str(store)]
    assert main([*reference, "--method", "reference", "--bootstrap", "0", "--quiet"]) == 0
    assert "ranked by: raw reference score (not calibrated)" in capsys.readouterr().out
    assert Store(store).get_json("results", "bridge-de-fr")["method"] == "reference"
    for flags, message in (
        (["--pool", "nearby"], "--pool: invalid choice: 'nearby'"),
        (["--method", "magic"], "--method: invalid choice: 'magic'"),
        (["--calibration-draws", "1"], "--calibration-draws"),
    ):
        assert main([*reference, *flags, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (
        main(
            [
                "select-bridge",
                "--pair",
                "de-fr",
                "--bridges",
                "en",
                "--store",
                str(store),
                "--window",
                "x-y",
                "--quiet",
            ]
        )
        == 2
    )


# ---- the language-agnostic rule --------------------------------------------------------------
ALWAYS_TOP = [(0, 40), (3, 41), (3, 42)]  # fire on every token of every probe set
ALWAYS_HIGH = [(1, 43), (2, 44), (2, 45), (3, 46)]  # on 96% of them: under O's cut, above B's


def _write_ruled_probe_set(writer, src, tgt, hot, rate, mean):
    """Probabilities in hundredths (100 tokens a sample): base 0-0.3, `hot` at `rate`, and the
    planted always-firing neurons in every probe set."""
    rng = np.random.default_rng(hash((src, tgt, "ruled")) % 2**32)
    prob = (rng.integers(0, 31, size=(N, N_LAYERS, D_MLP)) / 100).astype(np.float32)
    for layer, neuron in hot:
        prob[:, layer, neuron] = rate
    for (layer, neuron), value in [(n, 1.0) for n in ALWAYS_TOP] + [(n, 0.96) for n in ALWAYS_HIGH]:
        prob[:, layer, neuron] = value
    journal = writer.probe_journal(src, tgt, {"src": src, "tgt": tgt, "n_samples": N, "template": "t"})
    strings = np.array([f"{src}->{tgt} {i}" for i in range(N)])
    journal.add_block(
        0,
        mean=mean.astype(np.float32),
        prob=prob,
        tokens=np.full(N, 100, np.int32),
        prompts=strings,
        generations=strings,
        source_words=np.array([f"{src}-word-{i}" for i in range(N)]),
        target_words=np.array([f"{tgt}-word-{i}" for i in range(N)]),
    )
    writer.finish_probe_set(src, tgt)


@pytest.fixture(scope="module")
def agnostic_store(tmp_path_factory):
    """The planted dependence of `planted_store` plus 7 neurons firing in every probe set: 3 at
    1.0 (inside O without the rule) and 4 at 0.96 (outside O, inside every B without the rule)."""
    path = tmp_path_factory.mktemp("agnostic") / "agnostic.h5"
    rng = np.random.default_rng(1)
    overlap = [(layer, j) for layer in (1, 2) for j in range(5)]
    hot = {
        "en": [(layer, 10 + j) for layer in (1, 2) for j in range(5)],
        "de": [(layer, 20 + j) for layer in (1, 2) for j in range(5)],
    }
    with StoreWriter(path, ModelInfo("synthetic", "synthetic@1", N_LAYERS, D_MLP)) as writer:
        for src, tgt in (("zh", "ja"), ("ja", "zh")):
            mean = rng.normal(size=(N, N_LAYERS, D_MLP))
            latent = rng.normal(size=N)
            for layer, j in overlap:
                mean[:, layer, j] = latent + 0.1 * rng.normal(size=N)
            for layer, j in hot["en"]:
                mean[:, layer, j] = latent**2 + 0.1 * rng.normal(size=N)
            _write_ruled_probe_set(writer, src, tgt, overlap, 0.99, mean)
        for bridge in ("en", "de"):
            for other in ("zh", "ja"):
                for a, b in ((bridge, other), (other, bridge)):
                    mean = rng.normal(size=(N, N_LAYERS, D_MLP))
                    _write_ruled_probe_set(writer, a, b, hot[bridge], 0.9, mean)
    return path


def _mask(neurons):
    mask = np.zeros((N_LAYERS, D_MLP), dtype=bool)
    for layer, j in neurons:
        mask[layer, j] = True
    return mask


def test_the_agnostic_rule_removes_exactly_the_planted_neurons_from_o_and_b(agnostic_store):
    from neuronoverlap.bridge.loader import bridge_agnostic

    store = Store(agnostic_store)
    planted = _mask(ALWAYS_TOP + ALWAYS_HIGH)
    agnostic, read = bridge_agnostic(store, "zh", "ja", ["en", "de"], 0.95)
    assert (agnostic == planted).all() and len(read) == 10
    plain_o, plain_b = bridge_sets(store, "zh", "ja", ["en", "de"], top_rate=0.05)
    ruled_o, ruled_b = bridge_sets(store, "zh", "ja", ["en", "de"], top_rate=0.05, agnostic=agnostic)
    assert (plain_o.mask & planted).sum() == 3
    assert all((plain_b[b].mask & planted).sum() == 4 for b in plain_b)
    assert (ruled_o.mask == (plain_o.mask & ~planted)).all()
    for b in ("en", "de"):
        assert (ruled_b[b].mask == (plain_b[b].mask & ~planted)).all()
    kwargs = {"window": [1, 2], "top_rate": 0.05, "n_random": 99, "n_bootstrap": 0, "progress": False}
    result = select_bridge(store, "zh", "ja", ["en", "de"], agnostic_share=0.95, **kwargs)
    assert result.overlap == ruled_o and result.bridges == ruled_b
    assert result.parameters["agnostic_share"] == 0.95 and result.parameters["n_agnostic"] == 7
    assert result.parameters["agnostic_per_layer"] == [1, 1, 2, 3]
    assert sorted(result.parameters["agnostic_over"]) == sorted(read)
    assert "not language-agnostic" in result.parameters["calibration_pool"]
    assert result.chosen == "en" and result.pvalues["en"] == pytest.approx(1 / 100)
    assert BridgeSelection.from_dict(json.loads(json.dumps(result.to_dict()))).parameters["n_agnostic"] == 7
    plain = select_bridge(store, "zh", "ja", ["en", "de"], **kwargs)
    assert plain.parameters["agnostic_share"] is None and plain.overlap == plain_o


def test_an_agnostic_rule_that_finds_none_changes_nothing(planted_store):
    """No neuron of planted_store fires on over 95% of tokens everywhere: the rule's path gives
    the result of the plain path bit for bit (random sets, calibration, bootstrap)."""
    kwargs = {
        "window": [1, 2],
        "top_rate": 0.05,
        "n_random": 49,
        "n_bootstrap": 20,
        "seed": 2,
        "progress": False,
    }
    plain = select_bridge(planted_store, "zh", "ja", ["en", "de"], **kwargs)
    ruled = select_bridge(planted_store, "zh", "ja", ["en", "de"], agnostic_share=0.95, **kwargs)
    assert ruled.parameters["n_agnostic"] == 0
    assert ruled.overlap == plain.overlap and ruled.bridges == plain.bridges
    assert ruled.calibrated == plain.calibrated and ruled.pvalues == plain.pvalues
    assert ruled.calibration == plain.calibration and ruled.bootstrap == plain.bootstrap
    with pytest.raises(InputError, match="agnostic share is in"):
        select_bridge(planted_store, "zh", "ja", ["en", "de"], agnostic_share=1.5, **kwargs)
