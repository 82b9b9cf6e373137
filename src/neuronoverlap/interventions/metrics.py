"""Task metrics of an intervention, each per item so that intervals come from a bootstrap over
items: FLORES perplexity (token NLL), and for BLI precision@1, the gold's log-probability and the
share of answers written in the target language's script (Kojima et al. 2024's measure of a
switched output language).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import Bool, Float

from neuronoverlap.errors import InputError
from neuronoverlap.interventions.effects import bootstrap_mean_interval
from neuronoverlap.languages import get_language

#: ISO 15924 script -> the Unicode character-name prefixes of its letters.
SCRIPT_LETTERS: dict[str, tuple[str, ...]] = {
    "Latn": ("LATIN",),
    "Arab": ("ARABIC",),
    "Hebr": ("HEBREW",),
    "Cyrl": ("CYRILLIC",),
    "Grek": ("GREEK",),
    "Deva": ("DEVANAGARI",),
    "Thai": ("THAI",),
    "Hang": ("HANGUL",),
    "Hans": ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"),
    "Hant": ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"),
    "Jpan": ("HIRAGANA", "KATAKANA", "CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"),
}


def in_script(text: str, script: str) -> bool:
    """Whether `text` has letters and all of them belong to `script` (ISO 15924)."""
    if script not in SCRIPT_LETTERS:
        raise InputError(f"no letter table for script {script!r}; known: {', '.join(SCRIPT_LETTERS)}")
    prefixes = SCRIPT_LETTERS[script]
    letters = [c for c in text if unicodedata.category(c).startswith("L")]
    return bool(letters) and all(unicodedata.name(c, "").startswith(prefixes) for c in letters)


def script_flags(answers: Sequence[str], lang: str) -> Bool[np.ndarray, " item"]:
    """For each answer: written in `lang`'s script (an empty answer is not)."""
    script = get_language(lang).script
    return np.array([in_script(a, script) for a in answers], dtype=bool)


def mean_with_interval(values: Any, *, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """{"mean", "low", "high", "n"}: the mean and its percentile bootstrap interval."""
    array = np.asarray(values, dtype=np.float64)
    low, high = bootstrap_mean_interval(array, confidence=confidence, seed=seed)
    return {
        "mean": float(array.mean()) if array.size else math.nan,
        "low": low,
        "high": high,
        "n": int(array.size),
    }


def perplexity_summary(nll: Float[np.ndarray, " sentence"], *, confidence: float = 0.95) -> dict[str, Any]:
    """Per-sentence token NLL -> its mean and interval, and perplexity exp(mean NLL) with the
    interval's ends exponentiated."""
    summary = mean_with_interval(nll, confidence=confidence)
    return {
        "nll": summary,
        "perplexity": {k: math.exp(summary[k]) for k in ("mean", "low", "high")},
    }


def bli_items(result, *, prompts: Any = None) -> dict[str, dict[str, Any]]:
    """Per condition of an `EvaluationResult` of BLI: hits, answers, the full prompts (few-shot
    prefix + query) and the golds as the model would write them (the `answer` template)."""
    answer = (prompts or {}).get("answer") or result.params["prompts"]["answer"]
    prefixes = result.params["few_shot_prefixes"]
    items = {}
    for name, condition in result.conditions.items():
        prefix = prefixes[name] if name in prefixes else prefixes.get(f"{name}/step2", "")
        items[name] = {
            "hits": condition.hits,
            "answers": [r.answer for r in condition.records],
            "prompts": [prefix + r.prompt for r in condition.records],
            "golds": [[answer.format(a=g) for g in r.gold] for r in condition.records],
        }
    return items
