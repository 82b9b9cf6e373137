"""The latent language of translation prompts (logit lens; Wendler et al. 2024, "Do Llamas work
in English?"): read each layer's residual stream at the prompt's last position through the
model's final norm and unembedding, and measure how much probability it puts on the answer
written in each language.

Prompts: the validation study's direct BLI prompts s -> t (one-word lines with `shots` few-shot
examples from the train split), on source words of the s-t **train** dictionary (never test
words) that have a translation in every tracked language: the target, English, and each
candidate bridge.

Multi-token words (Wendler et al.'s first-token rule): the token set of a word in language L is
every single token that spells a prefix of one of its translations, with or without a leading
space, of at least min(2, len(word)) characters; a token found in several languages' sets of the
same prompt counts for each of them with weight 1 / (number of such languages), so the masses
of a prompt never count one token's probability twice. The mass of L at layer l is the summed
probability of its set.

`latent_profile` returns, per language and layer, the mean mass over words with a percentile
bootstrap interval over words; the `latent` rule scores each candidate bridge by its mean mass
over the latent layers: by default the second half of the model less its last layer
(`latent_window`: layers L//2 .. L-2, where Wendler et al. find the English-like latent;
9-16 of Gemma-3-270M's 18). Not the HSIC selection's window (10/32..22/32 of depth): on
Gemma-3-270M that ends at layer 11, before any answer token is readable through the lens
(measured on fi-hu and zh-ja before any study used the rule; docs/evaluation.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from neuronoverlap.bridge.loader import layer_window
from neuronoverlap.data import load_dictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.bli import PROMPT_STYLES, direct_prefix
from neuronoverlap.evaluation.protocol import load_examples
from neuronoverlap.languages import get_language
from neuronoverlap.models import NeuronModel
from neuronoverlap.probes.prompts import render


def latent_window(n_layers: int) -> list[int]:
    """The default latent layers: L//2 .. L-2 (the last layer alone when L < 3)."""
    return list(range(n_layers // 2, n_layers - 1)) or [n_layers - 1]


def prefix_tokens(tokenizer, word: str) -> set[int]:
    """The single tokens spelling a prefix of `word` or of " " + `word`, of at least
    min(2, len(word)) characters (without the space)."""
    shortest = min(2, len(word))
    out: set[int] = set()
    for text, lead in ((word, 0), (" " + word, 1)):
        for end in range(lead + shortest, len(text) + 1):
            ids = tokenizer.encode(text[:end], add_special_tokens=False)
            if len(ids) == 1:
                out.add(int(ids[0]))
    return out


def token_weights(tokenizer, words: Mapping[str, Sequence[str]]) -> dict[str, dict[int, float]]:
    """Per language, its answer tokens (the union over its translations) and their weights:
    1 / the number of languages whose set holds the token."""
    sets = {lang: set().union(*(prefix_tokens(tokenizer, w) for w in ws)) for lang, ws in words.items()}
    count: dict[int, int] = {}
    for ids in sets.values():
        for i in ids:
            count[i] = count.get(i, 0) + 1
    return {lang: {i: 1 / count[i] for i in sorted(ids)} for lang, ids in sets.items()}


@torch.inference_mode()
def lens_probabilities(model: NeuronModel, prompts: Sequence[str]) -> Float[Tensor, "batch layer vocab"]:
    """softmax(unembed(final_norm(resid_post[l]))) at each prompt's last position, every layer
    (left padding puts every last token last); float32 on the CPU."""
    batch = model.encode(prompts)
    resid: dict[int, Tensor] = {}

    def keep(x: Tensor, hook) -> Tensor:
        resid[int(hook.name.split(".")[1])] = x[:, -1].detach()
        return x

    hooks = [(f"blocks.{layer}.hook_resid_post", keep) for layer in range(model.n_layers)]
    backend = model.backend
    kwargs: dict = {"attention_mask": batch.attention_mask, "return_type": "logits"}
    if model.supports_kv_cache:  # a TransformerBridge
        kwargs.update(position_ids=batch.position_ids, use_cache=False, logits_to_keep=1)
    backend.run_with_hooks(batch.input_ids, fwd_hooks=hooks, **kwargs)
    stacked = torch.stack([resid[layer] for layer in range(model.n_layers)], dim=1)  # batch layer d
    logits = backend.unembed(backend.ln_final(stacked)).float()
    cap = getattr(backend.cfg, "output_logits_soft_cap", None)
    if cap is not None and cap > 0:
        logits = cap * torch.tanh(logits / cap)
    return torch.softmax(logits, dim=-1).cpu()


def language_masses(
    model: NeuronModel,
    prompts: Sequence[str],
    weights: Sequence[Mapping[str, Mapping[int, float]]],
    languages: Sequence[str],
    batch_size: int = 8,
    progress: bool = False,
) -> Float[np.ndarray, "prompt language layer"]:
    """Each prompt's lens mass per language and layer (`weights[i]`: prompt i's token weights)."""
    out = np.zeros((len(prompts), len(languages), model.n_layers))
    for start in tqdm(
        range(0, len(prompts), batch_size), desc="logit lens", disable=not progress, leave=False
    ):
        probs = lens_probabilities(model, prompts[start : start + batch_size])
        for j, p in enumerate(probs):
            for k, lang in enumerate(languages):
                tokens = weights[start + j][lang]
                if tokens:
                    ids = torch.tensor(list(tokens), dtype=torch.long)
                    w = torch.tensor(list(tokens.values()), dtype=torch.float32)
                    out[start + j, k] = (p[:, ids] * w).sum(dim=1).numpy()
    return out


def _nested(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in values)


@dataclass(frozen=True)
class LatentProfile:
    """Per tracked language (the target, English, each candidate bridge) and layer: the mean
    logit-lens mass of the answer in that language over the words, and its interval."""

    kind: ClassVar[str] = "latent"
    FORMAT: ClassVar[int] = 1

    model: str
    src: str
    tgt: str
    languages: tuple[str, ...]
    candidates: tuple[str, ...]
    layers: tuple[int, ...]
    window: tuple[int, ...]
    words: tuple[str, ...]
    mean: tuple[tuple[float, ...], ...]  # [language][layer]
    low: tuple[tuple[float, ...], ...]
    high: tuple[tuple[float, ...], ...]
    confidence: float = 0.95
    n_bootstrap: int = 1000
    shots: int = 5
    seed: int = 0
    token_rule: str = "prefix tokens >= min(2, len) chars, with and without a leading space; shared 1/k"
    extra: dict = field(default_factory=dict, compare=True)

    @property
    def key(self) -> str:
        return f"latent-{self.src}-{self.tgt}"

    def scores(self) -> dict[str, float]:
        """The `latent` rule: each candidate's mean mass over the window layers."""
        rows = {lang: self.mean[i] for i, lang in enumerate(self.languages)}
        index = [self.layers.index(layer) for layer in self.window]
        return {b: float(np.mean([rows[b][i] for i in index])) for b in self.candidates}

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "format": self.FORMAT,
            **{f.name: getattr(self, f.name) for f in fields(self)},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> LatentProfile:
        if d.get("kind") != cls.kind or d.get("format") != cls.FORMAT:
            raise InputError(
                f"not a latent profile of format {cls.FORMAT}: {d.get('kind')!r} {d.get('format')!r}"
            )
        values = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        for name in ("languages", "candidates", "layers", "window", "words"):
            values[name] = tuple(values[name])
        for name in ("mean", "low", "high"):
            values[name] = tuple(tuple(row) for row in values[name])
        values["extra"] = dict(values.get("extra", {}))
        return cls(**values)

    def table(self) -> str:
        """Plain text: per layer the mean mass [interval] of each language; window layers
        starred."""
        head = f"{'layer':>6} " + " ".join(f"{lang:>22}" for lang in self.languages)
        rows = [f"latent profile {self.src} -> {self.tgt} ({self.model}, {len(self.words)} words)", head]
        for j, layer in enumerate(self.layers):
            cells = [
                f"{self.mean[i][j]:.4f} [{self.low[i][j]:.4f},{self.high[i][j]:.4f}]"
                for i in range(len(self.languages))
            ]
            mark = "*" if layer in self.window else " "
            rows.append(f"{layer:>5}{mark} " + " ".join(f"{c:>22}" for c in cells))
        best = self.scores()
        rows.append("latent rule (mean over * layers): " + ", ".join(f"{b} {v:.4f}" for b, v in best.items()))
        return "\n".join(rows)


def latent_figure(profile: LatentProfile) -> bytes:
    """PNG of the profile (Wendler et al.'s figure): per language the mean lens mass by layer
    with its interval shaded; the window's layers marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.axvspan(min(profile.window) - 0.5, max(profile.window) + 0.5, color="0.92", label="window")
    for i, lang in enumerate(profile.languages):
        role = "target" if lang == profile.tgt else "candidate" if lang in profile.candidates else "English"
        line = ax.plot(profile.layers, profile.mean[i], marker="o", markersize=3, label=f"{lang} ({role})")
        ax.fill_between(profile.layers, profile.low[i], profile.high[i], color=line[0].get_color(), alpha=0.2)
    ax.set_xlabel("layer")
    ax.set_ylabel("lens probability of the answer")
    ax.set_title(f"{profile.src} -> {profile.tgt}: latent language ({len(profile.words)} words)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def tracked_languages(src: str, tgt: str, candidates: Sequence[str]) -> list[str]:
    """The target, English (unless it is the source), then the candidates, each once."""
    langs = [tgt, *(["en"] if src != "en" else []), *candidates]
    return list(dict.fromkeys(langs))


def latent_profile(
    model: NeuronModel,
    src: str,
    tgt: str,
    candidates: Sequence[str],
    *,
    n: int = 100,
    shots: int = 5,
    seed: int = 0,
    window: Sequence[int] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    batch_size: int = 8,
    data_dir: str | None = None,
    progress: bool = True,
) -> LatentProfile:
    """The logit-lens profile of `n` train-split words s -> t (see the module docstring)."""
    src, tgt = get_language(src).code, get_language(tgt).code
    candidates = [get_language(b).code for b in candidates]
    if src == tgt:
        raise InputError(f"a pair needs two different languages, got {src}-{tgt}")
    if not candidates or len(set(candidates)) != len(candidates) or {src, tgt} & set(candidates):
        raise InputError(f"candidates must be distinct and exclude {src} and {tgt}: {candidates}")
    if n < 1 or n_bootstrap < 1 or not 0 < confidence < 1:
        raise InputError("n and n_bootstrap must be >= 1 and confidence in (0, 1)")
    languages = tracked_languages(src, tgt, candidates)
    dictionaries = {lang: load_dictionary(src, lang, split="train", data_dir=data_dir) for lang in languages}
    prompts_style = PROMPT_STYLES["study"]
    examples = load_examples(src, [tgt], [], shots, seed, (), prompts_style.non_identical_shots, data_dir)
    shown = {e.source for e in examples}
    usable = [
        w
        for w in dictionaries[tgt].source_words
        if w not in shown and all(w in d.translations for d in dictionaries.values())
    ]
    if not usable:
        raise InputError(f"no {src} train word has a translation in every one of {', '.join(languages)}")
    order = np.random.default_rng(seed).permutation(len(usable))[:n]
    words = [usable[int(i)] for i in sorted(order)]
    prefix = direct_prefix(prompts_style, src, tgt, examples)
    prompts = [prefix + render(prompts_style.direct, src, tgt, w, prompts_style.names) for w in words]
    weights = [
        token_weights(model.tokenizer, {lang: dictionaries[lang].translations[w] for lang in languages})
        for w in words
    ]
    masses = language_masses(model, prompts, weights, languages, batch_size, progress)  # word lang layer
    rng = np.random.default_rng(seed + 1)
    draws = rng.integers(0, len(words), size=(n_bootstrap, len(words)))
    boot = masses[draws].mean(axis=1)  # (boot, lang, layer)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    layers = list(range(model.n_layers))
    return LatentProfile(
        model=model.fingerprint(),
        src=src,
        tgt=tgt,
        languages=tuple(languages),
        candidates=tuple(candidates),
        layers=tuple(layers),
        window=tuple(
            latent_window(model.n_layers)
            if window is None
            else layer_window(model.n_layers, layers=list(window))
        ),
        words=tuple(words),
        mean=_nested(masses.mean(axis=0)),
        low=_nested(low),
        high=_nested(high),
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        shots=shots,
        seed=seed,
        extra={
            "mean_tokens_per_language": {
                lang: float(np.mean([len(wt[lang]) for wt in weights])) for lang in languages
            },
            "no_token_share": {lang: float(np.mean([not wt[lang] for wt in weights])) for lang in languages},
        },
    )


def latent_scores(profile: LatentProfile) -> dict[str, float]:
    """The `latent` rule's scores of a profile (more latent mass: better)."""
    if any(math.isnan(v) for v in profile.scores().values()):
        raise InputError(f"{profile.key} has no latent mass for some candidate")
    return profile.scores()
