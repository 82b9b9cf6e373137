"""The store: schema, refusals, damage detection, locking, and resuming after kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuronoverlap.errors import InputError
from neuronoverlap.models import StopRule, generate_greedy, load_model
from neuronoverlap.options import ProbeOptions
from neuronoverlap.probes import (
    flores_sentences,
    open_writer,
    record_corpus,
    record_probe_set,
    translation_probe_sets,
)
from neuronoverlap.store import Store

STOP = StopRule(max_new_tokens=6)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, tiny_llama):
    path = tmp_path_factory.mktemp("store") / "run.h5"
    fwd, bwd = translation_probe_sets("de", "en", 12, seed=3)
    sentences, params = flores_sentences("he", 10)
    with open_writer(path, tiny_llama) as writer:
        for probe_set in (fwd, bwd):
            assert (
                record_probe_set(tiny_llama, writer, probe_set, batch_size=5, stop=STOP, progress=False)
                == "recorded"
            )
        assert (
            record_corpus(tiny_llama, writer, "he", sentences, params, batch_size=4, progress=False)
            == "recorded"
        )
    return path, fwd, sentences


def test_reader_slices_and_schema(small_store, tiny_llama):
    path, fwd, _ = small_store
    store = Store(path)
    assert store.probe_sets() == ["de-en", "en-de"] and store.corpora() == ["he"]
    view = store.probes("de", "en")
    assert view.layer(2).shape == (12, tiny_llama.d_mlp)
    assert view.layer(2, "probability").max() <= 1.0 and view.layer(2, "probability").min() >= 0.0
    assert view.strings("prompts") == fwd.prompts
    assert view.strings("source_words") == fwd.source_words
    probability = store.corpus("he").activation_probability()
    assert probability.shape == (tiny_llama.n_layers, tiny_llama.d_mlp)
    # Readable with plain h5py from the documented schema alone.
    with h5py.File(path, "r") as f:
        assert f.attrs["model_fingerprint"] == tiny_llama.fingerprint()
        g = f["tiny-llama/probes/de-en"]
        assert g["mean"].shape == (12, tiny_llama.n_layers, tiny_llama.d_mlp)
        assert g["mean"].chunks == (12, 1, tiny_llama.d_mlp) and g["mean"].fletcher32
        assert g.attrs["template"] == '{S}:"{w}"→{T}:' and "data_sha256" in g.attrs
        assert f["tiny-llama/corpora/he/n_tokens"][()] == store.corpus("he").n_tokens


def test_probe_statistics_equal_brute_force(small_store, tiny_llama):
    """Per-sample mean/prob equal a full capture of every counted position, one prompt at a time."""
    path, fwd, _ = small_store
    view = Store(path).probes("de", "en")
    mean, prob, tokens = view.array("mean"), view.array("probability"), view.tokens()

    class Capture:
        def __init__(self):
            self.rows = {layer: [] for layer in range(tiny_llama.n_layers)}

        def consume(self, layer, activation, count_mask):
            self.rows[layer].append(activation[count_mask])

    for i in (0, 7, 11):
        capture = Capture()
        # the positions the recorder counts by default (ProbeOptions.count: the word and the answer)
        spans = fwd.word_spans()[i : i + 1]
        count = ProbeOptions.count
        generate_greedy(tiny_llama, [fwd.prompts[i]], STOP, capture, count=count, word_spans=spans)
        acts = np.stack(
            [
                np.concatenate([r.numpy() for r in capture.rows[layer]])
                for layer in range(tiny_llama.n_layers)
            ],
            axis=1,
        )  # [pos, layer, neuron]
        assert acts.shape[0] == tokens[i]
        np.testing.assert_allclose(mean[i], acts.mean(0), atol=1e-4)
        np.testing.assert_allclose(prob[i], (acts > 0).mean(0), atol=2.0 / tokens[i])


def test_corpus_statistics_equal_brute_force(small_store, tiny_llama):
    path, _, sentences = small_store
    corpus = Store(path).corpus("he")
    fires = np.zeros((tiny_llama.n_layers, tiny_llama.d_mlp))
    total = 0

    class Capture:
        def consume(self, layer, activation, count_mask):
            nonlocal total
            fires[layer] += (activation[count_mask] > 0).sum(0).numpy()
            total += int(count_mask.sum()) if layer == 0 else 0

    for s in sentences:
        tiny_llama.forward_activations([s], Capture())
    assert corpus.n_tokens == total
    assert np.abs(corpus.fire_count() - fires).max() <= 2  # padding-free vs batched numerics


def test_rerun_skips_and_other_model_is_refused(small_store, tiny_mistral, tiny_llama):
    path, fwd, _ = small_store
    before = path.stat().st_mtime_ns
    with open_writer(path, tiny_llama) as writer:
        assert (
            record_probe_set(tiny_llama, writer, fwd, batch_size=5, stop=STOP, progress=False)
            == "already stored"
        )
    assert path.stat().st_mtime_ns == before
    with pytest.raises(InputError, match="another model"):
        open_writer(path, tiny_mistral)


def test_other_template_is_refused(small_store, tiny_llama):
    path, _, _ = small_store
    other, _ = translation_probe_sets("de", "en", 12, seed=3, template="{S}: {w}\n{T}:")
    with open_writer(path, tiny_llama) as writer:
        with pytest.raises(InputError, match="template"):
            record_probe_set(tiny_llama, writer, other, batch_size=5, stop=STOP, progress=False)
    assert Store(path).probes("de", "en").n_samples == 12  # nothing lost


def test_second_writer_is_refused_readers_are_fine(small_store, tiny_llama):
    path, _, _ = small_store
    with open_writer(path, tiny_llama):
        with pytest.raises(InputError, match="another process"):
            open_writer(path, tiny_llama)
        assert Store(path).probes("de", "en").n_samples == 12


def test_damaged_and_truncated_files_are_clear_errors(small_store, tmp_path):
    path, _, _ = small_store
    data = bytearray(path.read_bytes())
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"is truncated \(\d+ of \d+ bytes"):
        Store(truncated)
    # Flip bytes inside the compressed chunks of 'mean': fletcher32 must catch it.
    with h5py.File(path, "r") as f:
        ds = f["tiny-llama/probes/de-en/mean"]
        offset = ds.id.get_chunk_info(0).byte_offset
    damaged = tmp_path / "damaged.h5"
    for i in range(offset + 20, offset + 60):
        data[i] ^= 0xFF
    damaged.write_bytes(data)
    with pytest.raises(InputError, match="damaged"):
        Store(damaged).probes("de", "en").layer(0)
    not_a_store = tmp_path / "plain.h5"
    with h5py.File(not_a_store, "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="not a neuronoverlap store"):
        Store(not_a_store)


SCRIPT = """
import sys
from neuronoverlap.models import StopRule, load_model
from neuronoverlap.probes import open_writer, record_probe_set, translation_probe_sets
model = load_model("tiny-llama")
fwd, _ = translation_probe_sets("fr", "en", 40, seed=1)
with open_writer(sys.argv[1], model) as writer:
    record_probe_set(model, writer, fwd, batch_size=4, stop=StopRule(max_new_tokens=8), progress=False)
"""


def _run(store: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_kill_9_then_rerun_equals_uninterrupted(tmp_path):
    whole, killed = tmp_path / "whole.h5", tmp_path / "killed.h5"
    assert _run(whole).wait(timeout=300) == 0
    proc = _run(killed)
    journal = tmp_path / "killed.h5.partial" / "probes" / "fr-en"
    deadline = time.time() + 240
    while len(list(journal.glob("block-?????????.npz"))) < 3 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = len(list(journal.glob("block-?????????.npz")))
    assert 3 <= committed < 10, "the kill must land mid-run"
    assert not killed.exists()
    rerun = _run(killed)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()[-2000:]
    a, b = Store(whole).probes("fr", "en"), Store(killed).probes("fr", "en")
    for stat in ("mean", "probability"):
        assert np.array_equal(a.array(stat), b.array(stat))
    assert np.array_equal(a.tokens(), b.tokens())
    assert a.strings("generations") == b.strings("generations")
    assert not journal.exists()


def test_same_inputs_same_numbers(tiny_llama, tmp_path):
    fwd, _ = translation_probe_sets("es", "en", 6, seed=0)
    arrays = []
    for name in ("a.h5", "b.h5"):
        with open_writer(tmp_path / name, tiny_llama) as writer:
            record_probe_set(tiny_llama, writer, fwd, batch_size=3, stop=STOP, progress=False)
        arrays.append(Store(tmp_path / name).probes("es", "en").array("probability"))
    assert np.array_equal(*arrays)


def test_empty_inputs_are_errors(tiny_llama, tmp_path):
    with open_writer(tmp_path / "e.h5", tiny_llama) as writer:
        with pytest.raises(InputError, match="no sentences"):
            record_corpus(tiny_llama, writer, "en", [], {"lang": "en"}, progress=False)
    with pytest.raises(InputError, match="at least 1"):
        translation_probe_sets("de", "en", 0)
    assert load_model is not None


def test_json_results_round_trip(small_store, tiny_llama):
    path, _, _ = small_store
    payload = {"chosen": "en", "scores": {"en": 1.5, "de": 0.25}, "note": "日本語"}
    with open_writer(path, tiny_llama) as writer:
        writer.put_json("results", "bridge-zh-ja", payload)
    store = Store(path)
    assert store.get_json("results", "bridge-zh-ja") == payload
    assert store.group_names("results") == ["bridge-zh-ja"]
    assert store.probes("de", "en").n_samples == 12
    with pytest.raises(InputError, match="no results entry"):
        store.get_json("results", "bli-zh-ja")


def test_a_block_cut_short_by_a_kill_is_ignored(tmp_path):
    """A kill during a block's write leaves only a temporary file: it is never read as a block."""
    from neuronoverlap.store.journal import Journal

    journal = Journal(tmp_path, "probes", "fr-en")
    journal.start({"n_samples": 8})
    journal.add_block(0, tokens=np.arange(4))
    (journal.dir / ".block-000000004.npz.partial").write_bytes(b"PK\x03\x04 cut short")
    (journal.dir / "block-000000004.npz.tmp.npz").write_bytes(b"PK\x03\x04 cut short")
    assert [p.name for p in journal.block_paths()] == ["block-000000000.npz"]
