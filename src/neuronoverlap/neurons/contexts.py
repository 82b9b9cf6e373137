"""A neuron's top-activating contexts, read back from a store: the k FLORES sentences (or probe
samples) where it fires most, the firing token marked, a few tokens either side.

The store keeps only indices, values and the tokens' character spans (`store/contexts.py`); the
sentences are read back from FLORES-200 by index, checked against the corpus's `data_sha256`
(the same files as at recording). Probe-set contexts come with their sample's prompt and
generation, without token spans: the token is given by position only.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.store import schema
from neuronoverlap.store.contexts import HINT, has_contexts, read_spans, read_top, require_contexts

#: Tokens of context shown either side of the firing token.
DEFAULT_WINDOW = 6


@dataclass(frozen=True)
class Context:
    """One top-activating context of a neuron: where (`source`: a corpus language or a probe set,
    `sample`: the sentence or sample index, `position`: its token) and how strongly (`value`:
    act_fn(gate) there, the sample's largest). `tokens` are the window's token texts, `marked` the
    index of the firing token among them (None for probe sets: no spans stored); `text` the whole
    sentence."""

    source: str
    rank: int
    sample: int
    position: int
    value: float
    tokens: tuple[str, ...]
    marked: int | None
    text: str

    def line(self, mark: tuple[str, str] = ("[[", "]]")) -> str:
        """The window with the firing token between `mark`s ('…' where the sentence goes on)."""
        if self.marked is None:
            return self.text
        tokens = list(self.tokens)
        tokens[self.marked] = mark[0] + tokens[self.marked] + mark[1]
        return "".join(tokens)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens"] = list(self.tokens)
        return d


@lru_cache(maxsize=64)
def _flores(lang: str, split: str, n: int, sha256: str, data_dir) -> tuple[str, ...]:
    from neuronoverlap.data.flores import read_flores

    sentences = read_flores(lang, split=split, data_dir=data_dir)[:n]
    if hashlib.sha256("\n".join(sentences).encode()).hexdigest() != sha256:
        raise InputError(
            f"the FLORES-200 {split} sentences of {lang} differ from those the store recorded "
            "(data_sha256); give the --data-dir it was recorded from"
        )
    return tuple(sentences)


def corpus_sentences(params: dict, data_dir=None) -> tuple[str, ...]:
    """The sentences a corpus was recorded on, read back from FLORES-200 and checked."""
    return _flores(
        params["lang"], params["split"], int(params["n_sentences"]), params["data_sha256"], data_dir
    )


def _window(text: str, spans: np.ndarray, position: int, width: int) -> tuple[tuple[str, ...], int]:
    """Token texts around `position`: each token's characters with the gap before it; a token
    whose characters an earlier token already showed (bytes of one character) shows none, unless
    it is the firing token."""
    lo, hi = max(0, position - width), min(len(spans), position + width + 1)
    tokens, cursor = [], int(spans[lo][0])
    for i in range(lo, hi):
        start, end = int(spans[i][0]), int(spans[i][1])
        if i == position:
            _give_back(tokens, cursor - start)  # characters shared with earlier tokens: the firing one's
            tokens.append(text[min(cursor, start) : end] if end > start else "⟨s⟩")  # BOS: no characters
        else:
            tokens.append(text[cursor:end] if end > cursor else "")
        cursor = max(cursor, end)
    return tuple(tokens), position - lo


def _give_back(tokens: list[str], n: int) -> None:
    """Remove the last `n` characters shown by `tokens` (from the end backwards)."""
    for i in range(len(tokens) - 1, -1, -1):
        if n <= 0:
            return
        cut = min(n, len(tokens[i]))
        tokens[i], n = tokens[i][: len(tokens[i]) - cut], n - cut


def _rows(top: dict[str, np.ndarray], i: int = 0):
    """(value, sample, position) of the i-th neuron's top-k slots, best first."""
    return zip(top["value"][i], top["sample"][i], top["position"][i], strict=True)


def _corpus_contexts(
    store, lang: str, neurons: list[tuple[int, int]], width: int, data_dir
) -> list[list[Context]]:
    """The contexts of each of `neurons` in corpus `lang` (the corpus's spans and sentences read
    once)."""
    view = store.corpus(lang)
    with store._file() as f:
        group = f[view.key]
        require_contexts(group, f"corpus {lang}", store.path)
        top = read_top(group, neurons)
        spans = read_spans(group)
    sentences = corpus_sentences(view.params, data_dir)
    out = []
    for i in range(len(neurons)):
        contexts = []
        for rank, (value, sample, position) in enumerate(_rows(top, i)):
            if sample < 0:
                break
            text = sentences[sample]
            tokens, marked = _window(text, spans[sample], int(position), width)
            where = (lang, rank, int(sample), int(position), float(value))
            contexts.append(Context(*where, tokens, marked, text))
        out.append(contexts)
    return out


def _probe_contexts(store, name: str, layer: int, neuron: int) -> list[Context]:
    view = store.probes(name)
    with store._file() as f:
        group = f[view.key]
        require_contexts(group, f"probe set {name}", store.path)
        top = read_top(group, [(layer, neuron)])
    prompts, generations = view.strings("prompts"), view.strings("generations")
    out = []
    for rank, (value, sample, position) in enumerate(_rows(top)):
        if sample < 0:
            break
        text = prompts[sample] + generations[sample]
        out.append(Context(name, rank, int(sample), int(position), float(value), (), None, text))
    return out


def top_contexts(
    store, layer: int, neuron: int, source: str, *, width: int = DEFAULT_WINDOW, data_dir=None
) -> list[Context]:
    """The top contexts of neuron (layer, neuron) in `source`: a corpus language ('de') or a
    probe set ('zh-ja'), best first; a source without contexts is an `InputError` with a hint."""
    store._check_layer(layer)
    if not 0 <= neuron < store.d_mlp:
        raise InputError(f"neuron {neuron} out of range 0..{store.d_mlp - 1} for {store.model_name}")
    if "-" in source:
        return _probe_contexts(store, source, layer, neuron)
    return _corpus_contexts(store, source, [(layer, neuron)], width, data_dir)[0]


def context_sources(store) -> list[str]:
    """The corpora and probe sets of `store` that hold contexts."""
    out = []
    with store._file() as f:
        for kind, names in ((schema.CORPORA, store.corpora()), (schema.PROBES, store.probe_sets())):
            for name in names:
                if has_contexts(f[f"{store.group}/{kind}/{name}"]):
                    out.append(name)
    return out


def contexts_frame(contexts: list[Context]):
    """The contexts as a pandas DataFrame (one row each; needs the `frames` extra)."""
    from neuronoverlap.frames import optional

    pandas = optional("pandas", "a contexts DataFrame")
    rows = [{**c.to_dict(), "context": c.line()} for c in contexts]
    columns = ["source", "rank", "sample", "position", "value", "context", "text", "tokens", "marked"]
    return pandas.DataFrame(rows, columns=columns)


class NeuronView:
    """One neuron of a store: `store.neuron(12, 77).top_contexts("de")`."""

    def __init__(self, store, layer: int, neuron: int):
        store._check_layer(layer)
        if not 0 <= neuron < store.d_mlp:
            raise InputError(f"neuron {neuron} out of range 0..{store.d_mlp - 1} for {store.model_name}")
        self.store, self.layer, self.neuron = store, layer, neuron

    def __repr__(self) -> str:
        return f"<NeuronView {self.layer}:{self.neuron} of {self.store.path}>"

    def top_contexts(self, source: str, *, width: int = DEFAULT_WINDOW, data_dir=None) -> list[Context]:
        return top_contexts(self.store, self.layer, self.neuron, source, width=width, data_dir=data_dir)

    def contexts_frame(self, sources: list[str] | None = None, *, width: int = DEFAULT_WINDOW):
        """Every source's top contexts (default: all that hold them) as one DataFrame."""
        sources = context_sources(self.store) if sources is None else sources
        return contexts_frame([c for s in sources for c in self.top_contexts(s, width=width)])


def neuron_contexts(
    store,
    neurons: list[tuple[int, int]],
    *,
    width: int = DEFAULT_WINDOW,
    required: bool = False,
    data_dir=None,
) -> dict[tuple[int, int], dict[str, list[Context]]]:
    """Each neuron's top contexts in every corpus that holds them (probe sets: by name, in
    `top_contexts`). `required`: a store without any is an `InputError` with a hint."""
    corpora = [s for s in context_sources(store) if s in store.corpora()]
    if required and not corpora:
        raise InputError(f"{store.path} holds no top-activating contexts; {HINT}")
    for layer, neuron in neurons:
        store._check_layer(layer)
        if not 0 <= neuron < store.d_mlp:
            raise InputError(f"neuron {neuron} out of range 0..{store.d_mlp - 1} for {store.model_name}")
    per_lang = {lang: _corpus_contexts(store, lang, list(neurons), width, data_dir) for lang in corpora}
    return {n: {lang: per_lang[lang][i] for lang in corpora} for i, n in enumerate(neurons)}


def format_contexts(contexts: dict[str, list[Context]], shown: int) -> list[str]:
    """Terminal lines: per language, the `shown` best contexts with the firing token in [[ ]]."""
    lines = []
    for lang, items in contexts.items():
        for c in items[:shown]:
            lines.append(f"  {lang:3s} #{c.rank + 1} {c.value:7.3f}  s{c.sample:<4d} {c.line()!r}")
    return (
        (["  top contexts (language, rank, activation, sentence, [[firing token]])"] + lines) if lines else []
    )
