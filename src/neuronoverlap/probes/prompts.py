"""Probe sets: translation prompts from a bilingual dictionary, monolingual FLORES sentences.

The translation template is BridgeX-ICL's `{S}:"{w}"→{T}:` with the languages' endonyms
(`Deutsch`, `日本語`), as in the reference code; both are options. A probe set is direction
specific: the set `zh-ja` holds prompts that translate zh words into ja, `ja-zh` the reverse,
built from the same sampled dictionary pairs.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field

from neuronoverlap import options
from neuronoverlap.data import BilingualDictionary, load_dictionary, read_flores
from neuronoverlap.data.flores import flores_file
from neuronoverlap.errors import InputError
from neuronoverlap.languages import get_language

DEFAULT_TEMPLATE = '{S}:"{w}"→{T}:'
NAME_STYLES = options.NAME_STYLES


def language_label(code: str, names: str = "endonym") -> str:
    if names not in NAME_STYLES:
        raise InputError(f"unknown language-name style {names!r}; use one of {', '.join(NAME_STYLES)}")
    lang = get_language(code)
    return lang.endonym if names == "endonym" else lang.name


def check_template(template: str) -> None:
    """Refuse (InputError) a template that is not a format string of {S}, {T} and {w}, or that
    lacks {w} (the probe word would not be in the prompt)."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise InputError(
            f"template {template!r} is malformed ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    unknown = sorted(set(fields) - {"S", "T", "w"})
    if unknown:
        raise InputError(f"template {template!r} may only use {{S}}, {{T}} and {{w}} (it uses {unknown})")
    if "w" not in fields:
        raise InputError(f"template {template!r} has no {{w}}: the probe word would not be in the prompt")


def render(template: str, src: str, tgt: str, word: str, names: str = "endonym") -> str:
    """Fill a template's {S}, {T} (language names) and {w} (the word)."""
    try:
        return template.format(S=language_label(src, names), T=language_label(tgt, names), w=word)
    except (KeyError, IndexError) as exc:
        raise InputError(f"template {template!r} may only use {{S}}, {{T}} and {{w}} ({exc})") from None


def word_span(template: str, src: str, tgt: str, word: str, names: str = "endonym") -> tuple[int, int]:
    """Character span [start, end) of the word in `render(template, src, tgt, word, names)`."""
    if "{w}" not in template:
        return 0, 0
    start = len(render(template.split("{w}", 1)[0], src, tgt, "", names))
    return start, start + len(word)


@dataclass
class ProbeSet:
    """Prompts of one direction, with the words they came from and provenance parameters."""

    src: str
    tgt: str
    prompts: list[str]
    source_words: list[str]
    target_words: list[str]
    params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"

    def __len__(self) -> int:
        return len(self.prompts)

    def word_spans(self) -> list[tuple[int, int]]:
        """Where each prompt's source word sits (for counting only word and answer tokens)."""
        template = self.params.get("template", DEFAULT_TEMPLATE)
        names = self.params.get("names", "endonym")
        return [word_span(template, self.src, self.tgt, w, names) for w in self.source_words]


def translation_probe_sets(
    src: str,
    tgt: str,
    n: int,
    seed: int = 0,
    template: str = DEFAULT_TEMPLATE,
    names: str = "endonym",
    split: str = "train",
    data_dir=None,
    dictionary: BilingualDictionary | None = None,
) -> tuple[ProbeSet, ProbeSet]:
    """The s->t and t->s probe sets from the same `n` dictionary pairs sampled with `seed`."""
    if n < 1:
        raise InputError(f"the number of probe pairs must be at least 1, got {n}")
    check_template(template)
    src, tgt = get_language(src).code, get_language(tgt).code
    if dictionary is None:
        dictionary = load_dictionary(src, tgt, split=split, data_dir=data_dir)
    if n > len(dictionary.pairs):
        raise InputError(
            f"-n {n}: the {src}-{tgt} dictionary ({split} split) has only {len(dictionary.pairs)} "
            f"word pairs; ask for {len(dictionary.pairs)} or fewer"
        )
    pairs = dictionary.sample_pairs(n, seed)
    provenance = dictionary.provenance()
    data_source = {
        "files": [p.rsplit("/", 1)[-1] for p in provenance["files"]],
        "split": provenance["split"],
        "composed": provenance["composed"],
        "pivot": provenance["pivot"],
    }
    checksum = hashlib.sha256("".join(provenance["sha256"]).encode()).hexdigest()
    common = {
        "kind": "translation",
        "template": template,
        "names": names,
        "seed": seed,
        "n_samples": len(pairs),
        "data_source": repr(data_source),
        "data_sha256": checksum,
        "composed": bool(provenance["composed"]),
    }
    forward = ProbeSet(
        src,
        tgt,
        prompts=[render(template, src, tgt, ws, names) for ws, _ in pairs],
        source_words=[ws for ws, _ in pairs],
        target_words=[wt for _, wt in pairs],
        params={**common, "src": src, "tgt": tgt, "direction": "forward"},
    )
    backward = ProbeSet(
        tgt,
        src,
        prompts=[render(template, tgt, src, wt, names) for _, wt in pairs],
        source_words=[wt for _, wt in pairs],
        target_words=[ws for ws, _ in pairs],
        params={**common, "src": tgt, "tgt": src, "direction": "backward"},
    )
    return forward, backward


def flores_sentences(
    lang: str, n: int | None = None, split: str = "dev", data_dir=None
) -> tuple[list[str], dict]:
    """The first `n` FLORES-200 sentences of `lang` (all if None) and their provenance."""
    sentences = read_flores(lang, split=split, data_dir=data_dir)
    if n is not None:
        if n < 1:
            raise InputError(f"the number of sentences must be at least 1, got {n}")
        sentences = sentences[:n]
    path = flores_file(lang, split, data_dir)
    params = {
        "lang": get_language(lang).code,
        "split": split,
        "n_sentences": len(sentences),
        "data_source": f"FLORES-200 {split}/{path.name}",
        "data_sha256": hashlib.sha256("\n".join(sentences).encode()).hexdigest(),
    }
    return sentences, params
