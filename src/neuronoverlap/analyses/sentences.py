"""Per-sentence FLORES statistics: the resampling unit of the spectrum's bootstrap.

The corpus recorder (`probes.recorder.record_corpus`) keeps language-level totals only. This
module records, for every sentence, each neuron's fire count, the sentence's token count and its
token ids, into the store group `corpus_sentences/<lang>` (docs/store.md):

    fire_count [sentence, layer, neuron] uint16   tokens [sentence] int32
    token_ids [sum of tokens] int32 (sentence after sentence)   attrs: params (JSON)

Batches are formed exactly as `record_corpus` forms them (same sentences, same batch size), so
the per-sentence counts sum to the stored corpus totals. A language is written in one
copy-on-write edit; rerunning skips languages already stored with the same parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np
import torch
from jaxtyping import Bool, Float, Int, UInt
from torch import Tensor
from tqdm.auto import tqdm

from neuronoverlap import __version__
from neuronoverlap.errors import InputError
from neuronoverlap.models import NeuronModel
from neuronoverlap.probes.recorder import precision_params
from neuronoverlap.store import Store, StoreWriter, schema
from neuronoverlap.versions import library_versions

SENTENCES = "corpus_sentences"


class SentenceFireCounts:
    """A `probes.stats.StreamingStatistic` keeping each sentence's fire counts and token count;
    `end_batch(n)` moves on to the next n sentences."""

    def __init__(self, n_sentences: int, n_layers: int, d_mlp: int):
        self.fire_count = np.zeros((n_sentences, n_layers, d_mlp), dtype=np.uint16)
        self.tokens = np.zeros(n_sentences, dtype=np.int32)
        self.start = 0

    def consume(
        self,
        layer: int,
        activation: Float[Tensor, "batch pos neuron"],
        count_mask: Bool[Tensor, "batch pos"],
    ) -> None:
        fires = ((activation > 0) & count_mask[..., None]).sum(dim=1)
        rows = slice(self.start, self.start + activation.shape[0])
        self.fire_count[rows, layer] = fires.to(torch.int32).cpu().numpy()
        if layer == 0:
            self.tokens[rows] = count_mask.sum(-1).to(torch.int32).cpu().numpy()

    def end_batch(self, n_inputs: int) -> None:
        self.start += n_inputs

    def result(self) -> tuple[UInt[np.ndarray, "sentence layer neuron"], Int[np.ndarray, " sentence"]]:
        """(fire counts, token counts) per sentence."""
        return self.fire_count, self.tokens

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "fire_count": self.fire_count.copy(),
            "tokens": self.tokens.copy(),
            "start": np.int64(self.start),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.fire_count = np.array(state["fire_count"], dtype=np.uint16)
        self.tokens = np.array(state["tokens"], dtype=np.int32)
        self.start = int(state["start"])


@dataclass(frozen=True)
class SentenceCounts:
    """One language's per-sentence statistics, read from a store."""

    lang: str
    fire_count: Int[np.ndarray, "sentence layer neuron"]
    tokens: Int[np.ndarray, " sentence"]
    token_ids: Int[np.ndarray, " token"]
    params: dict
    special_token_ids: Int[np.ndarray, " special"]

    @property
    def n_sentences(self) -> int:
        return int(self.tokens.shape[0])

    def activation_probability(self) -> Float[np.ndarray, "layer neuron"]:
        """Total fires / total tokens: the corpus activation probability."""
        return self.fire_count.sum(axis=0, dtype=np.int64) / float(self.tokens.sum())

    def sentence_token_ids(self) -> list[np.ndarray]:
        """The token ids of each sentence (special tokens included)."""
        return np.split(self.token_ids, np.cumsum(self.tokens)[:-1])


#: A fixed text whose token ids fingerprint the tokenizer: the store's model fingerprint does not
#: cover the tokenizer, and statistics tokenised two ways must not be compared.
TOKENIZER_PROBE = "Tokenizer check: Zürich, 東京, القاهرة, Jerusalem 2024."


def tokenizer_fingerprint(model: NeuronModel) -> str:
    """sha256 (first 16 hex digits) of the probe text's token ids and the vocabulary size."""
    ids = list(model.tokenizer(TOKENIZER_PROBE)["input_ids"])
    blob = json.dumps({"ids": [int(i) for i in ids], "vocab": len(model.tokenizer)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sentence_params(params: dict, batch_size: int, model: NeuronModel) -> dict:
    """What is recorded with a language's per-sentence statistics."""
    return {
        **params,
        "batch_size": batch_size,
        "toolkit_version": __version__,
        "library_versions": library_versions(),
        "unit": "sentence",
        "tokenizer": tokenizer_fingerprint(model),
        **precision_params(model.dtype, model.device),
    }


def _stored_params(store_path, lang: str) -> dict | None:
    try:
        store = Store(store_path)
    except InputError:
        return None
    if lang not in store.group_names(SENTENCES):
        return None
    with store.h5_group(SENTENCES, lang) as group:
        return json.loads(group.attrs["params"])


def record_sentence_counts(
    model: NeuronModel,
    writer: StoreWriter,
    lang: str,
    sentences: Sequence[str],
    params: dict,
    batch_size: int = 16,
    progress: bool = True,
) -> str:
    """Forward every sentence and store its fire counts, token count and token ids."""
    if not sentences:
        raise InputError(f"no sentences for corpus {lang}")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    params = sentence_params(params, batch_size, model)
    stored = _stored_params(writer.path, lang) if writer.path.exists() else None
    if stored is not None:
        stored.pop("special_token_ids", None)  # kept beside the params (the tokenizer's list)
        if stored != params:
            diff = next(k for k in sorted(set(stored) | set(params)) if stored.get(k) != params.get(k))
            raise InputError(
                f"per-sentence statistics of {lang} in {writer.path} were recorded "
                f"differently ({diff}: stored {stored.get(diff)!r}, asked "
                f"{params.get(diff)!r})"
            )
        return "already stored"
    counts = SentenceFireCounts(len(sentences), model.n_layers, model.d_mlp)
    ids: list[np.ndarray] = []
    bar = tqdm(
        total=len(sentences), desc=f"sentences {lang}", unit="sent", disable=not progress, dynamic_ncols=True
    )
    for start in range(0, len(sentences), batch_size):
        chunk = list(sentences[start : start + batch_size])
        batch = model.forward_activations(chunk, counts)
        counts.end_batch(len(chunk))
        mask = batch.attention_mask.bool().cpu()
        ids += [row[m].numpy().astype(np.int32) for row, m in zip(batch.input_ids.cpu(), mask, strict=True)]
        bar.update(len(chunk))
    bar.close()
    token_ids = np.concatenate(ids)
    special = sorted(int(i) for i in getattr(model.tokenizer, "all_special_ids", []))
    if token_ids.size != int(counts.tokens.sum()):
        raise InputError(f"corpus {lang}: counted tokens and token ids disagree")

    def fill(group: h5py.Group) -> None:

        if lang in group:
            del group[lang]
        g = group.create_group(lang)
        g.attrs["params"] = json.dumps(params, sort_keys=True)
        g.attrs["special_token_ids"] = np.array(special, dtype=np.int64)
        n, n_layers, d_mlp = counts.fire_count.shape
        g.create_dataset(
            "fire_count",
            data=counts.fire_count,
            chunks=(min(schema.CHUNK_ROWS, n), 1, d_mlp),
            compression=schema.COMPRESSION,
            compression_opts=schema.COMPRESSION_LEVEL,
            fletcher32=True,
        )
        g.create_dataset("tokens", data=counts.tokens, fletcher32=True)
        g.create_dataset("token_ids", data=token_ids, compression=schema.COMPRESSION, fletcher32=True)

    # What the commit writes (uncompressed): its space is checked and reserved before HDF5 writes.
    writer.edit(SENTENCES, fill, new_bytes=counts.fire_count.nbytes + counts.tokens.nbytes + token_ids.nbytes)
    return "recorded"


def sentence_languages(store_path) -> list[str]:
    """Languages whose per-sentence statistics the store holds."""
    return Store(store_path).group_names(SENTENCES)


def load_sentence_counts(store_path, lang: str) -> SentenceCounts:
    """One language's per-sentence statistics; `InputError` naming what is missing."""

    store = Store(store_path)
    have = store.group_names(SENTENCES)
    if lang not in have:
        raise InputError(
            f"{store_path} has no per-sentence statistics for {lang!r} (it has: "
            f"{', '.join(have) or 'none'}); record them with `neuronoverlap "
            "spectrum --bootstrap N`"
        )
    with store.h5_group(SENTENCES, lang) as group:
        params = json.loads(group.attrs["params"])
        special = group.attrs.get("special_token_ids", params.pop("special_token_ids", []))
        return SentenceCounts(
            lang,
            group["fire_count"][()],
            group["tokens"][()],
            group["token_ids"][()],
            params,
            np.asarray(special, dtype=np.int64),
        )


def load_blocks(store_path, langs: Sequence[str], block_size: int = 5):
    """The languages' per-sentence statistics summed into blocks (`bootstrap.BlockCounts`),
    with their token-type counts (special tokens left out) for the subword-overlap control."""
    from neuronoverlap.analyses.bootstrap import block_counts

    counts = {lang: load_sentence_counts(store_path, lang) for lang in langs}
    tokenizers = {c.params.get("tokenizer") for c in counts.values()}
    if len(tokenizers) != 1:
        raise InputError(
            "per-sentence statistics were tokenised differently across languages "
            f"(tokenizer fingerprints {sorted(map(str, tokenizers))}): record them again"
        )
    corpora = {(c.params.get("split"), c.params.get("n_sentences")) for c in counts.values()}
    if len(corpora) != 1:
        raise InputError(
            "per-sentence statistics must cover the same FLORES sentences (split and number) "
            f"in every language; got {sorted(map(str, corpora))}"
        )
    special = np.unique(np.concatenate([c.special_token_ids for c in counts.values()]))
    return block_counts(
        {lang: c.fire_count for lang, c in counts.items()},
        {lang: c.tokens for lang, c in counts.items()},
        block_size=block_size,
        token_ids={lang: c.sentence_token_ids() for lang, c in counts.items()},
        exclude_tokens=special,
    )
