"""The count rule of a probe set: which token positions its statistics count (docs/store.md, "What
is recorded for a probe", item 3), read back from a stored set; and the one check that probe sets
recorded under different rules are never reused under another rule nor mixed in one selection.

The rule decides what O(s,t) and B(b; s,t) are built from: "answer" (the default since issue 26)
counts the probe word's and the answer's tokens, "all" every real token (template and language
names too), so a set of one rule is never taken for one of the other.
"""

from __future__ import annotations

from collections.abc import Sequence

from neuronoverlap.errors import InputError

#: What each count rule (`options.TOKEN_COUNTS`) counts, as recorded in a probe set's
#: `counted_positions` parameter.
COUNTED_POSITIONS = {
    "all": "prompt and generated tokens, padding excluded",
    "answer": "the probe word's tokens and the generated tokens (BOS and template excluded)",
}


def count_rule(params: dict, name: str = "the probe set") -> str:
    """The count rule a stored probe set (`params`, its parameters) was recorded under.

    A set without `counted_positions` is taken for "all": the recorder has written the parameter
    since its first version (commit 6018386), which counted every real token, so only a set
    written by other means lacks it, and every position is what such a set meant too."""
    text = params.get("counted_positions")
    if text is None:
        return "all"
    for rule, described in COUNTED_POSITIONS.items():
        if text == described:
            return rule
    raise InputError(f"{name} records counted positions {text!r}, which no count rule of this toolkit writes")


def check_count_rule(store, names: Sequence[str], asked: str | None = None) -> str | None:
    """The count rule shared by the probe sets `names` that `store` (a `Store`) holds, or None
    when it holds none of them; sets it lacks are not looked at.

    With `asked`, each held set must have been recorded under it (a command about to reuse them
    for a recording under `asked`); without, they must share one rule (sets that O(s,t) and
    B(b; s,t) are built from together). Otherwise an `InputError` names the set, its rule and the
    other rule, and what to do; nothing is read beyond the sets' parameters, nothing written."""
    held = set(store.probe_sets())
    rules = {n: count_rule(store.probes(n).params, f"probe set {n}") for n in names if n in held}
    if not rules:
        return None
    first, rule = next(iter(rules.items()))
    for name, stored in rules.items():
        if asked is not None and stored != asked:
            raise InputError(
                f"probe set {name} in {store.path} was recorded with --count {stored}, not the asked "
                f"--count {asked}; nothing was changed: record into a new --store, or pass --count "
                f"{stored} (ProbeOptions(count={stored!r})) to use the stored sets"
            )
        if stored != rule:
            raise InputError(
                f"probe sets {first} (--count {rule}) and {name} (--count {stored}) in {store.path} "
                "were recorded under different count rules, and O(s,t) and B(b; s,t) would mix them; "
                "record all of them under one --count into a new --store"
            )
    return rule
