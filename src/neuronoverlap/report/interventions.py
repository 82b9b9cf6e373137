"""The report's "Do these neurons matter?" section: the intervention results kept in a store, as
Markdown lines (a separate function, to be placed in the page by the report's layout)."""

from __future__ import annotations

from pathlib import Path


def _signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def interventions_section(store: str | Path) -> list[str]:
    """Markdown lines of every intervention result in `store` ([] when there is none)."""
    from neuronoverlap.interventions.result import load_results

    results = load_results(store)
    if not results:
        return []
    lines = ["## Do these neurons matter?", ""]
    for result in results:
        if result.experiment == "perplexity":
            s = result.summary
            lines += [
                f"LAPE's test ({', '.join(s['langs'])}; intervention '{result.intervention}'): "
                "change of FLORES token NLL when each language's LAPE neurons are switched, z against "
                "band-matched random sets in brackets.",
                "",
                "| set | " + " | ".join(s["langs"]) + " |",
                "|---|" + "---|" * len(s["langs"]),
            ]
            for i, name in enumerate(s["sets"]):
                cells = [
                    f"{_signed(e, 4)} ({z:+.1f})"
                    for e, z in zip(s["effect"][i], s["z_exact"][i], strict=True)
                ]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            own = s["own_language_largest"]
            lines += [
                "",
                f"Own language changes most for {sum(own.values())} of {len(own)} sets; attribution "
                f"patching against the exact effect: r = {s['agreement_r']:.2f}.",
                "",
            ]
        else:
            lines += [
                f"BridgeX's premise for {result.name} (intervention '{result.intervention}'): change of BLI "
                "precision@1 and gold log-probability, p of the harm against random sets matched to "
                "each set.",
                "",
                "| set | neurons | condition | p@1 change [interval] | p | gold log-prob change | p |",
                "|---|---|---|---|---|---|---|",
            ]
            for row in result.rows:
                for condition, m in row["conditions"].items():
                    p1, lp = m["p_at_1"], m["gold_logprob"]
                    lines.append(
                        f"| {row['set']} | {row['n_neurons']} | {condition} | {_signed(p1['change'])} "
                        f"[{_signed(p1['interval'][0])}, {_signed(p1['interval'][1])}] | {p1['p']:.3f} | "
                        f"{_signed(lp['change'])} | {lp['p']:.3f} |"
                    )
            premises = [
                r for r in result.rows if r["premise"] and r["premise"]["own_minus_others"] is not None
            ]
            for row in premises:
                lines.append(
                    f"\n{row['set']}: p@1 drop through its own bridge minus the others': "
                    f"{_signed(row['premise']['own_minus_others'])}"
                )
            lines.append("")
    return lines
