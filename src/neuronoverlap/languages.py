"""The language registry: codes, names, endonyms, FLORES-200 codes, script and taxonomy.

The 15 languages of BridgeX-ICL are built in; `register` adds more. Every language is looked
up by its ISO 639-1 code; an unknown code is an `InputError` listing the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuronoverlap.errors import InputError


@dataclass(frozen=True)
class Language:
    """One language. `lineage` runs from the family down to the genus (Glottolog/WALS)."""

    code: str  # ISO 639-1
    name: str  # English name, e.g. "German"
    endonym: str  # the name in the language itself, e.g. "Deutsch" (the reference code prompts
    # with these)
    flores: str  # FLORES-200 code, e.g. "deu_Latn"
    script: str  # ISO 15924, e.g. "Latn"
    lineage: tuple[str, ...]  # family first, genus last

    @property
    def family(self) -> str:
        return self.lineage[0]

    @property
    def genus(self) -> str:
        return self.lineage[-1]


_BUILTIN = [
    Language("en", "English", "English", "eng_Latn", "Latn", ("Indo-European", "Germanic")),
    Language("de", "German", "Deutsch", "deu_Latn", "Latn", ("Indo-European", "Germanic")),
    Language("fr", "French", "Français", "fra_Latn", "Latn", ("Indo-European", "Romance")),
    Language("it", "Italian", "Italiano", "ita_Latn", "Latn", ("Indo-European", "Romance")),
    Language("pt", "Portuguese", "Português", "por_Latn", "Latn", ("Indo-European", "Romance")),
    Language("es", "Spanish", "Español", "spa_Latn", "Latn", ("Indo-European", "Romance")),
    Language("zh", "Chinese", "中文", "zho_Hans", "Hans", ("Sino-Tibetan", "Sinitic")),
    Language("ja", "Japanese", "日本語", "jpn_Jpan", "Jpan", ("Japonic", "Japanese")),
    Language("ar", "Arabic", "العربية", "arb_Arab", "Arab", ("Afro-Asiatic", "Semitic")),
    Language("he", "Hebrew", "עברית", "heb_Hebr", "Hebr", ("Afro-Asiatic", "Semitic")),
    Language(
        "id",
        "Indonesian",
        "Bahasa Indonesia",
        "ind_Latn",
        "Latn",
        ("Austronesian", "Malayo-Polynesian", "Malayo-Sumbawan"),
    ),
    Language(
        "tl",
        "Tagalog",
        "Tagalog",
        "tgl_Latn",
        "Latn",
        ("Austronesian", "Malayo-Polynesian", "Philippine"),
    ),
    Language("fi", "Finnish", "Suomi", "fin_Latn", "Latn", ("Uralic", "Finnic")),
    Language("hu", "Hungarian", "Magyar", "hun_Latn", "Latn", ("Uralic", "Ugric")),
    Language("sw", "Swahili", "Kiswahili", "swh_Latn", "Latn", ("Niger-Congo", "Bantu")),
]

_REGISTRY: dict[str, Language] = {lang.code: lang for lang in _BUILTIN}

#: The candidate bridge languages of the paper.
DEFAULT_BRIDGES: tuple[str, ...] = ("en", "de", "fr", "it", "pt", "es")


def known_codes() -> list[str]:
    """All registered ISO 639-1 codes, in registration order."""
    return list(_REGISTRY)


def get_language(code: str) -> Language:
    """The registered language for `code` (case-insensitive); `InputError` if unknown."""
    key = code.strip().lower()
    if key not in _REGISTRY:
        raise InputError(f"unknown language {code!r}; known languages: {', '.join(known_codes())}")
    return _REGISTRY[key]


def get_language_by_flores(flores_code: str) -> Language:
    """The registered language whose FLORES-200 code is `flores_code` (e.g. "deu_Latn")."""
    key = flores_code.strip().lower()
    for lang in _REGISTRY.values():
        if lang.flores.lower() == key:
            return lang
    raise InputError(
        f"unknown FLORES-200 code {flores_code!r}; known codes: "
        + ", ".join(lang.flores for lang in _REGISTRY.values())
    )


def resolve_language(code: str) -> Language:
    """A language from either its ISO 639-1 code ("de") or its FLORES-200 code ("deu_Latn")."""
    if "_" in code:
        return get_language_by_flores(code)
    return get_language(code)


def parse_languages(spec: str | list[str] | tuple[str, ...]) -> list[Language]:
    """Languages from `"en,de,fr"` or a list of codes; duplicates and empties are errors."""
    codes = [c.strip() for c in spec.split(",")] if isinstance(spec, str) else list(spec)
    if not codes or any(not c for c in codes):
        raise InputError(f"empty language in list {spec!r}")
    langs = [get_language(c) for c in codes]
    seen = [lang.code for lang in langs]
    dupes = sorted({c for c in seen if seen.count(c) > 1})
    if dupes:
        raise InputError(f"language listed twice: {', '.join(dupes)}")
    return langs


def parse_pair(spec: str) -> tuple[Language, Language]:
    """A source-target pair from `"zh-ja"`; the two must differ."""
    parts = spec.strip().split("-")
    if len(parts) != 2 or not all(parts):
        raise InputError(f"a language pair is written 'src-tgt', e.g. 'zh-ja'; got {spec!r}")
    src, tgt = get_language(parts[0]), get_language(parts[1])
    if src == tgt:
        raise InputError(f"a pair needs two different languages; got {spec!r}")
    return src, tgt


def register(language: Language) -> None:
    """Add a language (or replace one with the same code)."""
    if not language.code or not language.lineage:
        raise InputError("a language needs a code and at least a family in its lineage")
    _REGISTRY[language.code.lower()] = language


def taxonomy_distance(a: str, b: str) -> int:
    """Distance in the taxonomy on a fixed scale: 0 same language, 1 same genus, 2 same family
    but another genus, 3 different families (intermediate branches do not add steps, so a
    language with a longer lineage is not pushed away from every other family)."""
    la, lb = get_language(a), get_language(b)
    if la.code == lb.code:
        return 0
    if la.family != lb.family:
        return 3
    return 1 if la.genus == lb.genus else 2
