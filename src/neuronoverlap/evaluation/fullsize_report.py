"""The full-size analysis's decisions and issue 27's table as markdown, ready for
docs/findings.md (ANALYSIS/tests.md; `fullsize_tests.run_tests` writes it)."""

from __future__ import annotations

from collections.abc import Mapping

EXPLORATORY = "EXPLORATORY (first stage only; not the pre-registered test, which needs both stages)"


def _interval(e: Mapping | None, digits: int = 3) -> str:
    if e is None:
        return "-"
    return f"{e['value']:+.{digits}f} [{e['ci_low']:+.{digits}f}, {e['ci_high']:+.{digits}f}]"


def markdown_report(result: Mapping) -> str:
    """The decisions and issue 27's table as markdown, ready for docs/findings.md."""
    lines = []
    if result["label"] != "pre-registered":
        lines += [f"**{result['label']}**", ""]
    lines += [f"Pairs: {result['n_pairs']} (stages {', '.join(map(str, result['stages']))}).", ""]
    lines += ["**Issue 26, Test 1** (English removed; mean Kendall tau-b over pairs; one-sided", ""]
    lines[-2] += " permutation p, Holm over the two scores):"
    lines += ["| score | mean tau | p | Holm p | pairs | decision |", "|---|---|---|---|---|---|"]
    for key, t in result["test1"].items():
        lines.append(
            f"| {key} | {t['tau']:+.3f} | {t['pvalue']:.4f} | {t['holm_pvalue']:.4f} | {t['n_pairs']} | "
            f"{t['decision']} |"
        )
    t2 = result["test2"]
    if t2.get("computed", True) is False:
        lines += ["", f"**Issue 26, Test 2**: {t2['decision']}.", ""]
    else:
        left = (
            f" (left out, no step-1 accuracy: {', '.join(t2['pairs_left_out'])})"
            if t2["pairs_left_out"]
            else ""
        )
        if t2.get("bridges_left_out"):
            left += f"; candidates without a step-1 accuracy left out in {len(t2['bridges_left_out'])} pairs"
        lines += [
            "",
            "**Issue 26, Test 2** (hit ~ competence + HSIC_repaired + (1 | pair) + (1 | word); "
            f"{t2['n_bootstrap']} pair resamples): HSIC coefficient {t2['coefficient_hsic']:+.3f} "
            f"(90% bootstrap interval [{t2['interval_90'][0]:+.3f}, {t2['interval_90'][1]:+.3f}]), "
            f"competence {t2['coefficient_competence']:+.3f}; {t2['n_pairs']} pairs{left}. "
            f"**{t2['decision']}.**",
            "",
        ]
    choice = result["choice"]
    lines += [
        f"**Issue 27** (pooled over pairs; 95% word-bootstrap intervals; regret in p@1; NDCG@{choice['k']}):",
        "",
        f"| rule | hit | regret | NDCG@{choice['k']} | tau | regret - {choice['baseline']} |",
        "|---|---|---|---|---|---|",
    ]
    for rule, ms in choice["measures"].items():
        cells = [_interval(ms.get(m)) for m in ("hit", "regret", "ndcg", "tau")]
        cells.append(_interval(choice["versus_baseline"].get(rule)))
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    won = choice["beats_baseline"]
    lines += [
        "",
        "Rules that beat always-English (the 95% interval of regret(rule) - regret(english) "
        f"entirely below 0): {', '.join(won) if won else 'none'}"
        + (
            "; a single passing rule is reported as such, not as a finding, unless it also passes "
            "on the second model."
            if len(won) == 1
            else "."
        ),
    ]
    if result["chain"]:
        lines += ["", "**Several bridges** (chain - first bridge alone, pooled, 95% interval):", ""]
        for stage, files in result["chain"].items():
            for name, c in files.items():
                d = c["chain_minus_first"]
                verdict = "helps" if c["helps"] else "not shown to help"
                lines.append(
                    f"- stage {stage}, {name}: chain {c['chain']:.3f}, first bridge {c['first_bridge']:.3f}, "
                    f"best single (in hindsight) {c['best_single']:.3f}; chain - first "
                    f"{d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]: {verdict}"
                )
    else:
        lines += ["", "Several bridges: no `neuronoverlap chain` result in the study folders."]
    return "\n".join(lines) + "\n"
