"""The pre-registered decision rules of findings §5 (docs/findings.md, fixed before any result),
applied to stored intervention results: LAPE's diagonal (hypothesis 1), more than a random set
of its kind (2), O(s,t) carries translation (3) and BridgeX's premise (4).

Readings where the registered text is not explicit (written before any result was read):
hypothesis 2's "in >= 5 of 6 languages" applies to the exact and to the attribution criterion
alike; a language whose LAPE set is empty fails every criterion of its row; "a majority of its
bridges" is more than half (2 of 2, 2 of 3); an interval "excludes 0" on either side.

    python -m neuronoverlap.interventions.decisions out/interventions/lape.json \
        out/interventions/bli-de-fr.json out/interventions/bli-de-it.json out/interventions/bli-de-es.json
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from neuronoverlap.errors import InputError

#: The smallest exact p with 20 random sets, 1/21: "all 20 random sets below".
EXACT_LEVEL = 0.048
ATTRIBUTION_LEVEL = 0.01
#: The pooled correlation of attribution and exact effects above which the attribution p counts.
AGREEMENT = 0.7


def _verdict(holds: bool, fails: bool) -> str:
    return "holds" if holds else ("fails" if fails else "inconclusive")


def _excludes_zero(interval: Sequence[float]) -> bool:
    low, high = interval
    return bool(low > 0 or high < 0)


def lape_decisions(document: Mapping[str, Any]) -> dict[str, Any]:
    """Hypotheses 1 and 2 on a stored LAPE result (`intervene perplexity`, as its JSON)."""
    from neuronoverlap.stats.multiplicity import holm

    if document.get("experiment") != "perplexity":
        raise InputError("hypotheses 1-2 read an `intervene perplexity` result")
    summary, langs = document["summary"], list(document["summary"]["langs"])
    diagonal = {r["lang"]: r for r in document["rows"] if r["set"] == r["lang"]}
    own = summary.get("own_language_largest") or {}
    rows = {}
    for lang in langs:
        row = diagonal.get(lang)
        rows[lang] = {
            "n_neurons": row["n_neurons"] if row else 0,
            "own_largest": bool(own.get(lang, False)),
            "interval_excludes_0": bool(row) and _excludes_zero(row["interval"]),
            "p_exact": row["p_exact"] if row else math.nan,
            "p_attribution": row["p_attribution"] if row else math.nan,
        }
    known = {x: r["p_attribution"] for x, r in rows.items() if not math.isnan(r["p_attribution"])}
    adjusted = holm(known) if known else {}
    for lang, r in rows.items():
        r["p_attribution_holm"] = adjusted.get(lang, math.nan)
    n = len(langs)
    need = n - 1  # ">= 5 of 6"
    largest = sum(r["own_largest"] for r in rows.values())
    excludes = sum(r["interval_excludes_0"] for r in rows.values())
    exact = sum(r["p_exact"] <= EXACT_LEVEL for r in rows.values() if not math.isnan(r["p_exact"]))
    attribution = sum(r["p_attribution_holm"] <= ATTRIBUTION_LEVEL for r in rows.values())
    r_pooled = summary.get("agreement_r")
    counts = r_pooled is not None and not math.isnan(r_pooled) and r_pooled >= AGREEMENT
    h2 = exact >= need and (attribution >= need if counts else True)
    return {
        "languages": rows,
        "hypothesis_1": {
            "own_largest": f"{largest} of {n}",
            "interval_excludes_0": f"{excludes} of {n}",
            "verdict": _verdict(largest >= need and excludes >= need, largest <= n // 2),
        },
        "hypothesis_2": {
            "exact_p_at_most_0.048": f"{exact} of {n}",
            "attribution_holm_p_at_most_0.01": f"{attribution} of {n}",
            "agreement_r": r_pooled,
            "attribution_counts": bool(counts),
            "verdict": "holds" if h2 else "fails",
        },
    }


def _condition(row: Mapping[str, Any], condition: str, metric: str) -> Mapping[str, Any]:
    return row["conditions"][condition][metric]


def bli_decisions(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Hypotheses 3 and 4 on stored BLI ablation results (`intervene bli`, one per pair)."""
    if not documents or any(d.get("experiment") != "bli" for d in documents):
        raise InputError("hypotheses 3-4 read `intervene bli` results, one per pair")
    pairs, o_holds, premise_pairs, cases, negative = {}, 0, 0, 0, 0
    for document in documents:
        rows = {r["set"]: r for r in document["rows"]}
        entry: dict[str, Any] = {}
        o = rows.get("O")
        if o is None:
            entry["O"] = {"verdict": "empty set"}
        else:
            p1, lp = _condition(o, "zero-shot", "p_at_1"), _condition(o, "zero-shot", "gold_logprob")
            holds = all(c["p"] is not None and c["p"] <= EXACT_LEVEL for c in (p1, lp))
            entry["O"] = {"p_at_1_p": p1["p"], "gold_logprob_p": lp["p"], "holds": holds}
            o_holds += holds
        bridges = document["params"]["bridges"]
        held = []
        for b in bridges:
            row = rows.get(f"B:{b}")
            if row is None or not row.get("premise") or row["premise"]["own_minus_others"] is None:
                entry[f"B:{b}"] = {"holds": False, "note": "empty set or a single bridge"}
                held.append(False)
                cases += 1
                continue
            difference = row["premise"]["own_minus_others"]
            p = _condition(row, f"bridge:{b}", "p_at_1")["p"]
            holds = difference > 0 and p is not None and p <= EXACT_LEVEL
            entry[f"B:{b}"] = {"own_minus_others": difference, "p": p, "holds": holds}
            held.append(holds)
            cases += 1
            negative += difference <= 0
        entry["premise_holds"] = sum(held) > len(held) / 2
        premise_pairs += entry["premise_holds"]
        pairs[document["name"]] = entry
    n = len(documents)
    return {
        "pairs": pairs,
        "hypothesis_3": {
            "pairs_holding": f"{o_holds} of {n}",
            "verdict": "holds" if o_holds >= 2 else "fails",
        },
        "hypothesis_4": {
            "pairs_holding": f"{premise_pairs} of {n}",
            "cases_own_minus_others_at_most_0": f"{negative} of {cases}",
            "verdict": _verdict(premise_pairs >= 2, negative > cases / 2),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print(__doc__)
        return 2

    def decide() -> None:
        documents = []
        for path in paths:
            try:
                documents.append(json.loads(open(path, encoding="utf-8").read()))
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read intervention result {path}: {exc}") from None
        lape = [d for d in documents if d.get("experiment") == "perplexity"]
        bli = [d for d in documents if d.get("experiment") == "bli"]
        out = {}
        if lape:
            out["lape"] = lape_decisions(lape[0])
        if bli:
            out["bli"] = bli_decisions(bli)
        print(json.dumps(out, indent=1, default=float))

    from neuronoverlap.cli.script import script_main

    return script_main(decide)


if __name__ == "__main__":
    sys.exit(main())
