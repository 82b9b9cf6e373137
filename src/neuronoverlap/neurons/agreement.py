"""Does a neuron mean the same thing across languages? Its top sentences on parallel FLORES-200.

FLORES line i is the same sentence in every language, so a neuron's top-k sentence indices can
be compared across languages: for a pair (a, b), the Jaccard index of the two sets; the neuron's
**agreement** is the mean over the language pairs. A language-agnostic concept neuron fires on
the same sentences everywhere (agreement near 1); a neuron that fires on a language's script or
on frequent tokens picks sentences unrelated across languages (agreement near chance).

Chance is the shuffle null: permuting one language's sentence indices makes its top-k a uniform
random k-subset of the n sentences, so the pair's Jaccard is J = I / (k_a + k_b - I) with I
hypergeometric (n, k_a, k_b); `chance` is its exact expectation, averaged over the pairs like
the agreement. A per-neuron p-value comes from shuffling (`neuron_p_values`). For a neuron set
(O(s,t), B(b), LAPE), `set_agreement` compares the members' mean agreement with that of random
neurons drawn with the same count in each layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar

import numpy as np
from jaxtyping import Bool, Float, Int

from neuronoverlap.errors import InputError
from neuronoverlap.results import header, of_kind
from neuronoverlap.store import schema
from neuronoverlap.store.contexts import CONTEXTS, HINT


def pair_jaccard(
    a: Int[np.ndarray, "*neurons k"], b: Int[np.ndarray, "*neurons k"]
) -> Float[np.ndarray, " *neurons"]:
    """Jaccard index of the top-k sentence sets of each neuron (-1 marks an empty slot)."""
    valid_a, valid_b = a >= 0, b >= 0
    same = (a[..., :, None] == b[..., None, :]) & valid_a[..., :, None] & valid_b[..., None, :]
    inter = same.sum(axis=(-2, -1))
    union = valid_a.sum(-1) + valid_b.sum(-1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def expected_jaccard(n: int, k_a: int, k_b: int) -> float:
    """E[J] of a k_a-subset and an independent uniform k_b-subset of n items (the shuffle null)."""
    from scipy.stats import hypergeom

    if min(k_a, k_b) == 0:
        return 0.0
    i = np.arange(0, min(k_a, k_b) + 1)
    return float(np.sum(hypergeom(n, k_a, k_b).pmf(i) * i / (k_a + k_b - i)))


def agreement_scores(
    samples: dict[str, Int[np.ndarray, "*neurons k"]], n_sentences: int
) -> tuple[Float[np.ndarray, " *neurons"], Float[np.ndarray, " *neurons"]]:
    """(agreement, chance) of each neuron: the mean over language pairs of the Jaccard index of
    its top-k sentences, and of its shuffle-null expectation (`samples`: language -> indices)."""
    langs = sorted(samples)
    if len(langs) < 2:
        raise InputError(f"agreement needs contexts of at least 2 languages, got {len(langs)}")
    k = max(s.shape[-1] for s in samples.values())
    table = np.array([[expected_jaccard(n_sentences, a, b) for b in range(k + 1)] for a in range(k + 1)])
    total = chance = 0.0
    for a, b in combinations(langs, 2):
        total = total + pair_jaccard(samples[a], samples[b])
        chance = chance + table[(samples[a] >= 0).sum(-1), (samples[b] >= 0).sum(-1)]
    n_pairs = len(langs) * (len(langs) - 1) / 2
    return total / n_pairs, chance / n_pairs


def shuffled(samples: Int[np.ndarray, "neurons k"], n_sentences: int, rng) -> Int[np.ndarray, "neurons k"]:
    """The top-k sets after a random permutation of the sentence indices (one per neuron)."""
    out = np.full_like(samples, -1)
    for row in range(samples.shape[0]):
        valid = samples[row] >= 0
        out[row, valid] = rng.permutation(n_sentences)[: int(valid.sum())]
    return out


def neuron_p_values(
    samples: dict[str, Int[np.ndarray, "neurons k"]], n_sentences: int, n_shuffles: int = 999, seed: int = 0
) -> Float[np.ndarray, " neurons"]:
    """Per-neuron shuffle p-value of its agreement: (1 + #{shuffled >= observed}) / (1 + B),
    each language's sentence indices permuted independently."""
    rng = np.random.default_rng(seed)
    observed, _ = agreement_scores(samples, n_sentences)
    above = np.zeros(observed.shape)
    for _ in range(n_shuffles):
        null = {lang: shuffled(s, n_sentences, rng) for lang, s in samples.items()}
        above += agreement_scores(null, n_sentences)[0] >= observed - 1e-12
    return (1 + above) / (1 + n_shuffles)


# --- reading the store ----------------------------------------------------------------------
def parallel_corpora(store, langs: Sequence[str] | None = None) -> tuple[list[str], int]:
    """The corpora with contexts over the same FLORES sentences (split, count): their languages
    and the sentence count. Corpora of other splits or counts are not parallel: an error."""
    with store._file() as f:
        have = [
            lang
            for lang in store.corpora()
            if CONTEXTS in f[f"{store.group}/{schema.CORPORA}/{lang}"] and (langs is None or lang in langs)
        ]
    if langs is not None and set(langs) - set(have):
        raise InputError(f"{store.path}: no contexts for {', '.join(sorted(set(langs) - set(have)))}; {HINT}")
    if len(have) < 2:
        raise InputError(f"{store.path}: agreement needs contexts of 2 or more languages; {HINT}")
    shapes = {(store.corpus(x).params["split"], int(store.corpus(x).params["n_sentences"])) for x in have}
    if len(shapes) > 1:
        raise InputError(f"{store.path}: the corpora cover different FLORES sentences ({sorted(shapes)})")
    return have, shapes.pop()[1]


def stored_samples(store, langs: Sequence[str]) -> dict[str, Int[np.ndarray, "layer neuron k"]]:
    with store._file() as f:
        return {lang: f[f"{store.group}/{schema.CORPORA}/{lang}/{CONTEXTS}/sample"][()] for lang in langs}


def store_agreement(
    store, langs: Sequence[str] | None = None
) -> tuple[Float[np.ndarray, "layer neuron"], Float[np.ndarray, "layer neuron"], list[str]]:
    """(agreement, chance) of every neuron of `store`, and the languages compared."""
    langs, n = parallel_corpora(store, langs)
    agreement, chance = agreement_scores(stored_samples(store, langs), n)
    return agreement, chance, langs


@dataclass(frozen=True)
class SetAgreement:
    """A neuron set's agreement against random neurons with the same count in each layer."""

    kind: ClassVar[str] = "neuron-agreement"
    FORMAT: ClassVar[int] = 1

    set_name: str
    langs: tuple[str, ...]
    size: int
    mean: float  # the members' mean agreement
    chance: float  # the members' mean shuffle-null expectation
    random_means: tuple[float, ...]  # each random set's mean agreement
    p_value: float  # (1 + #{random mean >= mean}) / (1 + n_random)
    seed: int

    @property
    def key(self) -> str:
        return f"agreement-{self.set_name}"

    @property
    def random_mean(self) -> float:
        return float(np.mean(self.random_means)) if self.random_means else float("nan")

    def to_dict(self) -> dict:
        return {
            **header(self),
            "set_name": self.set_name,
            "langs": list(self.langs),
            "size": self.size,
            "mean": self.mean,
            "chance": self.chance,
            "random_means": list(self.random_means),
            "p_value": self.p_value,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, document: dict) -> SetAgreement:
        d = of_kind(cls, document)
        return cls(
            set_name=d["set_name"],
            langs=tuple(d["langs"]),
            size=int(d["size"]),
            mean=float(d["mean"]),
            chance=float(d["chance"]),
            random_means=tuple(float(x) for x in d["random_means"]),
            p_value=float(d["p_value"]),
            seed=int(d["seed"]),
        )

    def line(self) -> str:
        return (
            f"{self.set_name}: {self.size} neurons, agreement {self.mean:.3f} (chance {self.chance:.3f}); "
            f"layer-matched random neurons {self.random_mean:.3f}, p = {self.p_value:.3g} "
            f"({len(self.random_means)} draws; languages {','.join(self.langs)})"
        )


def set_agreement(
    agreement: Float[np.ndarray, "layer neuron"],
    chance: Float[np.ndarray, "layer neuron"],
    members: Bool[np.ndarray, "layer neuron"],
    *,
    name: str = "set",
    langs: Sequence[str] = (),
    n_random: int = 1000,
    seed: int = 0,
) -> SetAgreement:
    """Compare the members' mean agreement with `n_random` random sets of the same count in each
    layer (drawn among all neurons of that layer)."""
    members = np.asarray(members, dtype=bool)
    size = int(members.sum())
    if size == 0:
        raise InputError(f"neuron set {name!r} is empty")
    rng = np.random.default_rng(seed)
    counts = members.sum(axis=1)
    layers = np.flatnonzero(counts)
    random_means = []
    for _ in range(n_random):
        values = [
            agreement[layer, rng.choice(agreement.shape[1], counts[layer], replace=False)] for layer in layers
        ]
        random_means.append(float(np.concatenate(values).mean()))
    mean = float(agreement[members].mean())
    above = sum(m >= mean - 1e-12 for m in random_means)
    return SetAgreement(
        set_name=name,
        langs=tuple(langs),
        size=size,
        mean=mean,
        chance=float(chance[members].mean()),
        random_means=tuple(random_means),
        p_value=(1 + above) / (1 + n_random),
        seed=seed,
    )
