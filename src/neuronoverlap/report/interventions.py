"""The report's "Do these neurons matter?" section: the intervention results kept in a store
(`interventions.InterventionResult`, kind "intervention") as the report's tables, each noting the
options its result recorded (`described`, from the typed result)."""

from __future__ import annotations

from typing import Any

from neuronoverlap.report.collect import slug
from neuronoverlap.report.tables import Table

KIND = "intervention"


def intervention_tables(data: dict[str, Any]) -> list[Table]:
    """Tables of every intervention result in `data["interventions"]` (their stored documents)."""
    tables = []
    for document in data.get("interventions", []):
        if document["experiment"] == "perplexity":
            tables.append(_perplexity_table(document))
        else:
            tables += _bli_tables(document)
    return tables


def _described(document: dict[str, Any]) -> str:
    """The options the result recorded, in words (the kind alone for a document not read as one)."""
    return document.get("described") or f"intervention: {document['intervention']}"


def _perplexity_table(document: dict[str, Any]) -> Table:
    """LAPE's test: the change of FLORES token NLL per set (row) and language (column)."""
    summary = document["summary"]
    langs = list(summary["langs"])
    rows = []
    for i, name in enumerate(summary["sets"]):
        cells = []
        for effect, z in zip(summary["effect"][i], summary["z_exact"][i], strict=True):
            cells += [effect, z]
        rows.append([name, *cells])
    own = summary.get("own_language_largest") or {}
    everywhere = document["params"].get("exact_null", "all") == "all"  # older results ran every cell
    where = (
        "run exactly in every cell. "
        if everywhere
        else "run exactly on the diagonal only (the set's own language; blank elsewhere). "
    )
    note = (
        f"{_described(document)}. On each language's LAPE neurons, the change of FLORES "
        "token NLL (nats) per language and its z against band-matched random sets of the same size, "
        + where
        + f"Own language changes most for {sum(bool(v) for v in own.values())} of {len(own)} sets"
        + (
            f"; attribution patching against the exact effect: r = {summary['agreement_r']:.2f}."
            if summary.get("agreement_r") is not None
            else "."
        )
    )
    columns = ["set"] + [f"{c} {lang}" for lang in langs for c in ("change", "z")]
    return Table(
        f"intervention_{slug(document['name'])}",
        f"LAPE's test: switching off language-specific neurons ({', '.join(langs)})",
        columns,
        rows,
        note=note,
    )


def _bli_tables(document: dict[str, Any]) -> list[Table]:
    """BridgeX's premise: BLI per set and condition under the intervention, against the null."""
    rows, premises = [], []
    for row in document["rows"]:
        for condition, metrics in row["conditions"].items():
            p1, lp = metrics["p_at_1"], metrics["gold_logprob"]
            rows.append(
                [
                    row["set"],
                    row["n_neurons"],
                    condition,
                    p1["change"],
                    p1["interval"][0],
                    p1["interval"][1],
                    p1["p"],
                    lp["change"],
                    lp["p"],
                ]
            )
        premise = row.get("premise") or {}
        if premise.get("own_minus_others") is not None:
            premises.append([row["set"], premise["own_minus_others"]])
    base = f"intervention_{slug(document['name'])}"
    tables = [
        Table(
            base,
            f"BridgeX's premise for {document['name']}: BLI with each neuron set switched off",
            [
                "set",
                "neurons",
                "condition",
                "p@1 change",
                "ci_low",
                "ci_high",
                "p (harm vs random sets)",
                "gold log-prob change",
                "p (log-prob)",
            ],
            rows,
            note=f"{_described(document)}. p: the share of random sets matched to the set (layers, size, "
            "activation band) that harm at least as much.",
        )
    ]
    if premises:
        tables.append(
            Table(
                f"{base}_premise",
                "The drop of p@1 through a set's own bridge minus the drop through the other bridges",
                ["set", "own minus others"],
                premises,
            )
        )
    return tables
