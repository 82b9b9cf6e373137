"""`neuron` and `store.neuron(l, i)`: top-activating contexts read back from FLORES by index, the
firing token marked (issue 29)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.probes import flores_sentences, open_writer, record_corpus
from neuronoverlap.store import Store


def test_the_marked_token_is_the_tokenizers_token_at_the_position(tiny_store_template, tiny_llama):
    store = Store(tiny_store_template)
    sentences, _ = flores_sentences("fr", 4)
    for layer, neuron in [(0, 3), (1, 77), (3, 200)]:
        contexts = store.neuron(layer, neuron).top_contexts("fr", width=3)
        assert len(contexts) == 4  # 4 sentences recorded, k = 8: the other slots are empty
        assert [c.value for c in contexts] == sorted((c.value for c in contexts), reverse=True)
        for c in contexts:
            assert c.text == sentences[c.sample]
            start, end = tiny_llama.tokenizer(c.text, return_offsets_mapping=True)["offset_mapping"][
                c.position
            ]
            assert c.tokens[c.marked].endswith(c.text[start:end]) and c.text[start:end]
            assert (
                "[[" + c.tokens[c.marked] + "]]" in c.line()
                and c.line().replace("[[", "").replace("]]", "") in c.text
            )
            assert len(c.tokens) <= 7


def test_neuron_command_shows_contexts_in_the_terminal_and_json(tiny_store_template, capsys):
    assert main(["neuron", str(tiny_store_template), "1:77", "2:5", "--contexts", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if " #" in line]
    assert out.count("top contexts") == 2 and len(rows) == 2 * 3 * 2  # 2 neurons x 3 langs x 2
    assert all("[[" in row and "]]" in row for row in rows)
    assert main(["neuron", "--store", str(tiny_store_template), "1:77", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    contexts = document["neurons"][0]["contexts"]
    assert sorted(contexts) == ["de", "en", "fr"] and len(contexts["de"]) == 4
    first = contexts["de"][0]
    assert {"sample", "position", "value", "tokens", "marked", "text"} <= set(first)
    assert first["tokens"][first["marked"]]


def test_contexts_frame(tiny_store_template):
    pytest.importorskip("pandas")
    frame = Store(tiny_store_template).neuron(2, 9).contexts_frame()
    assert set(frame["source"]) == {"de", "en", "fr"} and len(frame) == 12
    assert frame["context"].str.contains(r"\[\[").all()


@pytest.fixture(scope="module")
def store_without_contexts(tiny_llama, tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "run.h5"
    sentences, params = flores_sentences("de", 3)
    with open_writer(path, tiny_llama) as writer:
        record_corpus(tiny_llama, writer, "de", sentences, params, progress=False, top_k=None)
    return path


def test_a_store_without_contexts(store_without_contexts, refused, capsys):
    assert main(["neuron", str(store_without_contexts), "1:2"]) == 0
    assert "no top-activating contexts in this store; record contexts" in capsys.readouterr().out
    refused(
        ["neuron", store_without_contexts, "1:2", "--contexts", "3"],
        store_without_contexts.parent,
        "holds no top-activating contexts",
        "corpus --top-k",
    )
    with pytest.raises(InputError, match="corpus de has no top-activating contexts; record contexts"):
        Store(store_without_contexts).neuron(1, 2).top_contexts("de")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["1:256"], "neuron 256 out of range 0..255"),
        (["9:1"], "layer 9 out of range 0..3"),
        (["1:2", "--contexts", "-1"], "--contexts needs a whole number"),
    ],
)
def test_bad_neuron_input_is_one_line(tiny_store_template, refused, argv, expected):
    refused(["neuron", tiny_store_template, *argv], tiny_store_template.parent, expected)


def test_top_k_below_one_is_refused(tmp_path, refused, no_model_load):
    store = tmp_path / "run.h5"
    argv = ["corpus", "--model", "tiny-llama", "--langs", "de", "-n", "2", "--top-k", "0", "--store", store]
    refused(argv, tmp_path, "--top-k must be at least 1, got 0")


def test_contexts_of_each_language_are_its_own_sentences(tiny_store_template):
    """Sentence i of every language is the same FLORES line: the indices read back index it."""
    store = Store(tiny_store_template)
    by_lang = {lang: store.neuron(3, 31).top_contexts(lang) for lang in ("de", "en", "fr")}
    for lang, contexts in by_lang.items():
        texts, _ = flores_sentences(lang, 4)
        assert sorted(c.sample for c in contexts) == list(range(4))
        assert all(c.text == texts[c.sample] for c in contexts)
    assert np.isfinite([c.value for cs in by_lang.values() for c in cs]).all()


def test_a_schema_2_store_upgrades_to_3_without_contexts(tiny_store_template, tmp_path, capsys):
    """A store written before contexts: refused for writing with the hint, upgraded (its data
    unchanged), then `neuron` says how to get contexts."""
    import shutil

    import h5py

    from neuronoverlap.store import checksums

    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    with h5py.File(path, "r+") as f:
        for kind in ("corpora", "probes"):
            for group in f[f"tiny-llama/{kind}"].values():
                if "contexts" in group:
                    del group["contexts"]
        f.attrs["schema_version"] = 2
        checksums.seal(f)
    assert main(["corpus", "--langs", "it", "-n", "2", "--store", str(path), "--quiet"]) == 2
    assert "store schema 2" in capsys.readouterr().err
    before = Store(path).corpus("de").fire_count()
    assert main(["store-upgrade", str(path)]) == 0
    assert "schema 2 -> 3" in capsys.readouterr().out
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == 3 and f.attrs["upgraded_from_schema"] == 2
    assert np.array_equal(Store(path).corpus("de").fire_count(), before)
    assert main(["neuron", str(path), "1:2"]) == 0
    assert "no top-activating contexts in this store" in capsys.readouterr().out
    assert main(["agreement", "--store", str(path)]) == 2
    assert "record contexts with `neuronoverlap corpus --top-k K`" in capsys.readouterr().err
