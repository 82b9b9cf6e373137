"""The report's tables, built once from the collected data: shown in the HTML page and
written as CSV files (`tables/<name>.csv`), raw values in the CSV, formatted in the page."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuronoverlap.analyses import THIRDS
from neuronoverlap.numbers import decimals, fixed, p_is, permutation_floor, probability, pvalue
from neuronoverlap.report.collect import fmt, slug


@dataclass
class Table:
    """A titled table: `rows` of raw values in `columns` order; `highlight` row indices."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    highlight: list[int] = field(default_factory=list)
    note: str = ""
    fold: bool | None = None  # None: fold long tables in the page
    #: How the page shows the numbers of a column, or of the row a key/value table labels so
    #: (`neuronoverlap.numbers`); others: `collect.fmt`. The CSV keeps the raw values.
    formats: dict[str, Callable[[Any], str]] = field(default_factory=dict)

    def formatter(self, row: list[Any], column: str) -> Callable[[Any], str]:
        """The page's format of the cell of `row` in `column`."""
        if column in self.formats:
            return self.formats[column]
        if len(self.columns) == 2 and column == self.columns[1] and str(row[0]) in self.formats:
            return self.formats[str(row[0])]
        return fmt

    def write_csv(self, path: Path) -> Path:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.columns)
            writer.writerows([[_csv_cell(v) for v in row] for row in self.rows])
        return path


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def flatten(document: Any, prefix: str = "") -> list[list[Any]]:
    """Nested dicts -> [dotted key, value] rows; lists of scalars stay one value."""
    if isinstance(document, Mapping):
        rows = []
        for key, value in document.items():
            rows += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(document, list) and any(isinstance(v, (Mapping, list)) for v in document):
        rows = []
        for i, value in enumerate(document):
            rows += flatten(value, f"{prefix}[{i}]")
        return rows
    return [[prefix, document]]


def _parameter_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for row in rows:
        if row["shared"]:
            out.append([row["key"], row["value"], "all"])
        else:
            for value, names in row["by_value"].items():
                out.append([row["key"], json.loads(value) if value != "(absent)" else None, ", ".join(names)])
    return out


def provenance_tables(data: dict[str, Any]) -> list[Table]:
    prov, report = data["provenance"], data["report"]
    rows = [
        [key, prov[key]]
        for key in (
            "model_name",
            "model_fingerprint",
            "n_layers",
            "d_mlp",
            "n_neurons",
            "activation_definition",
            "store",
            "store_bytes",
            "schema_version",
            "toolkit_version",
            "created",
            "modified",
        )
    ]
    rows += [["report generated", report["generated"]], ["report toolkit_version", report["toolkit_version"]]]
    rows += [[f"report parameter {key}", value] for key, value in report["parameters"].items()]
    rows += [
        [f"layer third {name}", f"{layers[0]}-{layers[-1]}" if layers else "(none)"]
        for name, layers in data["layer_thirds"].items()
    ]
    config = prov["model_config"]
    tables = [Table("provenance", "Store and model", ["field", "value"], rows, fold=False)]
    if isinstance(config, Mapping) and config:
        tables.append(
            Table(
                "model_config",
                "Model configuration (as recorded in the store)",
                ["key", "value"],
                [[k, v] for k, v in config.items()],
            )
        )
    if data["data_sources"]:
        tables.append(
            Table(
                "data_sources",
                "Data sources and checksums",
                ["kind", "name", "data_source", "data_sha256", "n", "seed"],
                [
                    [d["kind"], d["name"], d["data_source"], d["data_sha256"], d["n"], d["seed"]]
                    for d in data["data_sources"]
                ],
            )
        )
    return tables


def probe_tables(data: dict[str, Any]) -> list[Table]:
    sets = data["probe_sets"]
    if not sets:
        return []
    tables = [
        Table(
            "probe_sets",
            "Probe sets",
            ["name", "src", "tgt", "samples", "mean tokens", "template", "composed"],
            [
                [
                    p["name"],
                    p["src"],
                    p["tgt"],
                    p["n_samples"],
                    p["mean_tokens"],
                    p["template"],
                    p["composed"],
                ]
                for p in sets
            ],
        ),
        Table(
            "probe_parameters",
            "Probe-set parameters (value, and the sets that have it)",
            ["parameter", "value", "probe sets"],
            _parameter_rows(data["probe_parameters"]),
        ),
        Table(
            "probe_examples",
            "Example prompts and greedy generations",
            ["probe set", "source word", "gold target", "prompt", "generation"],
            [
                [p["name"], e["source_word"], e["target_word"], e["prompt"], e["generation"]]
                for p in sets
                for e in p["examples"]
            ],
        ),
    ]
    overlap = data["probe_overlap"]
    if overlap:
        pairs, counts, shares = overlap["pairs"], overlap["counts"], overlap["shares"]
        third_of = {layer: name for name, layers in data["layer_thirds"].items() for layer in layers}
        columns = ["layer", "third"] + [f"{c} {p}" for p in pairs for c in ("count", "share")]
        rows = [
            [layer, third_of.get(layer)]
            + [v for i in range(len(pairs)) for v in (counts[i][layer], shares[i][layer])]
            for layer in range(len(counts[0]))
        ]
        tables.append(
            Table(
                "probe_overlap_layers",
                "Overlap neurons O(s,t) per layer (count, share of d_mlp)",
                columns,
                rows,
            )
        )
        tables.append(
            Table(
                "probe_overlap_thirds",
                "Where O(s,t) sits: neurons per third of depth",
                ["pair", "|O|", *THIRDS, *(f"share {t}" for t in THIRDS)],
                [
                    [p, size, *c, *s]
                    for p, size, c, s in zip(
                        pairs, overlap["sizes"], overlap["third_counts"], overlap["third_shares"], strict=True
                    )
                ],
            )
        )
    return tables


def corpus_tables(data: dict[str, Any]) -> list[Table]:
    corpora = data["corpora"]
    if not corpora:
        return []
    similarity = data["similarity"]
    sizes = (
        dict(zip(similarity["languages"], similarity["active_set_sizes"], strict=True)) if similarity else {}
    )
    tables = [
        Table(
            "corpora",
            "Corpora (FLORES-200 statistics per language)",
            ["language", "sentences", "tokens", "split", "active set size"],
            [[c["lang"], c["n_sentences"], c["n_tokens"], c["split"], sizes.get(c["lang"])] for c in corpora],
        ),
        Table(
            "corpus_parameters",
            "Corpus parameters (value, and the languages that have it)",
            ["parameter", "value", "languages"],
            _parameter_rows(data["corpus_parameters"]),
        ),
    ]
    if similarity:
        codes = similarity["languages"]
        for measure, title in (
            ("jaccard", "Jaccard of the active sets"),
            ("cosine", "Cosine of activation probabilities over shared neurons"),
            ("overlap", "Shared active neurons |A_a & A_b|"),
        ):
            tables.append(
                Table(
                    f"similarity_{measure}",
                    title,
                    ["language", *codes],
                    [[c, *row] for c, row in zip(codes, similarity[measure], strict=True)],
                )
            )
        layers = similarity["pair_layers"]
        third_of = {layer: name for name, ls in data["layer_thirds"].items() for layer in ls}
        tables.append(
            Table(
                "corpus_overlap_layers",
                f"Corpus overlaps A_a & A_b per layer over {len(layers['pairs'])} language pairs",
                ["layer", "third", "mean count", "min count", "max count"],
                [
                    [layer, third_of.get(layer), mean, low, high]
                    for layer, (mean, low, high) in enumerate(
                        zip(layers["mean_counts"], layers["min_counts"], layers["max_counts"], strict=True)
                    )
                ],
            )
        )
    spectrum = data["spectrum"]
    if spectrum:
        mantel = spectrum["mantel"]
        tables.append(
            Table(
                "spectrum",
                "Language spectrum against the taxonomy",
                ["quantity", "value"],
                [
                    ["similarity measure", spectrum["measure"]],
                    ["linkage", spectrum["linkage"]],
                    ["Mantel r", mantel["statistic"]],
                    ["Mantel p-value", mantel["pvalue"]],  # shown with the test's floor
                    ["Mantel permutations", mantel["n_permutations"]],
                    ["Mantel method", mantel["method"]],
                    ["Mantel alternative", mantel["alternative"]],
                    ["Mantel seed", mantel["seed"]],
                    ["cophenetic r vs taxonomy", spectrum["cophenetic_vs_taxonomy"]],
                    ["dendrogram fit (cophenetic r vs neuron distance)", spectrum["dendrogram_fit"]],
                    *_interval_rows(spectrum.get("intervals")),
                ],
                formats={"Mantel p-value": _pvalue_format(mantel["n_permutations"])},
            )
        )
        tables += _interval_tables(spectrum.get("intervals"))
    return tables


def _pvalue_format(n_permutations: int | None) -> Callable[[Any], str]:
    """p-values of a permutation test with `n_permutations` (None: no floor known)."""
    floor = permutation_floor(n_permutations) if n_permutations else None
    return lambda p: pvalue(p, floor=floor)


def _p_is(p: float | None, n_permutations: int | None) -> str:
    return p_is(p, floor=permutation_floor(n_permutations) if n_permutations else None)


def _fixed_format(places: int | None) -> Callable[[Any], str]:
    return lambda x: fixed(x, places)


def _interval_rows(intervals: dict[str, Any] | None) -> list[list[Any]]:
    """Bootstrap intervals of the spectrum (docs/analyses.md), when the report computed them."""
    if not intervals:
        return []
    p = intervals["parameters"]
    level = f"{p['level']:.0%}"

    def span(v: dict[str, Any]) -> str:
        places = decimals((v["low"], v["high"]))
        return f"{fixed(v['estimate'], places)} [{fixed(v['low'], places)}, {fixed(v['high'], places)}]"

    rows = [
        [
            "bootstrap",
            f"{p['resamples']} resamples of {p['n_blocks']} blocks of "
            f"{p['block_size']} sentences, {level} intervals",
        ],
        [f"Mantel r ({level} interval)", span(intervals["mantel_r"])],
        [f"cophenetic r vs taxonomy ({level} interval)", span(intervals["cophenetic_vs_taxonomy"])],
    ]
    rows += [
        [
            f"partial Mantel r given {name} ({level} interval; p)",
            f"{span(v)}; {_p_is(v['pvalue'], v.get('n_permutations'))}",
        ]
        for name, v in intervals["partial_mantel"].items()
    ]
    return rows


def _interval_tables(intervals: dict[str, Any] | None) -> list[Table]:
    if not intervals:
        return []
    level = f"{intervals['parameters']['level']:.0%}"
    columns = ["pair"]
    for m in ("shared", "Jaccard", "CKA"):
        columns += [m, f"{m} low", f"{m} high"]
    return [
        Table(
            "spectrum_pair_intervals",
            f"Pairs of languages with {level} bootstrap intervals",
            columns,
            [[r["pair"], *r["overlap"], *r["jaccard"], *r["cka"]] for r in intervals["pairs"]],
        ),
        Table(
            "spectrum_third_intervals",
            f"Mean share of the corpus overlaps per third, and their paired differences, "
            f"{level} bootstrap intervals",
            ["third", "share", "low", "high"],
            [
                [t, v["estimate"], v["low"], v["high"]]
                for t, v in {
                    **intervals["mean_third_shares"],
                    **intervals.get("mean_third_share_differences", {}),
                }.items()
            ],
        ),
        Table(
            "dendrogram_support",
            "Dendrogram clusters: share of bootstrap resamples with the cluster",
            ["cluster", "support"],
            [[c, v] for c, v in intervals["dendrogram_support"].items()],
        ),
    ]


def bridge_tables(bridge: dict[str, Any]) -> list[Table]:
    base = bridge_table_base(bridge)
    rows = bridge["rows"]
    ranking = [r["bridge"] for r in rows]
    level = (bridge["document"].get("bootstrap") or {}).get("level")
    interval = f"; interval: {level:.0%} bootstrap" if level else "; no bootstrap, no interval"
    scores = decimals(*(r["interval"] for r in rows))  # scores and intervals to the same decimals
    summary = Table(
        base,
        f"Bridge selection {bridge['src']}->{bridge['tgt']} "
        f"({bridge['method']}, window layers {_span(bridge['window'])}{interval})",
        [
            "rank",
            "bridge",
            "score",
            "interval low",
            "interval high",
            "p-value",
            "selection probability",
            "choice",
        ],
        [
            [
                r["rank"],
                r["bridge"],
                r["score"],
                *r["interval"],
                r["pvalue"],
                r["probability"],
                bridge.get("label", "chosen") if r["chosen"] else "",
            ]
            for r in rows
        ],
        highlight=[i for i, r in enumerate(rows) if r["chosen"]],
        formats={
            **dict.fromkeys(("score", "interval low", "interval high"), _fixed_format(scores)),
            "p-value": _pvalue_format((bridge["document"].get("parameters") or {}).get("n_random")),
            "selection probability": probability,
        },
    )
    by_key = {(r["layer"], r["bridge"]): r for r in bridge["layer_rows"]}
    columns = ["layer", "|O_l|"] + [f"score {b}" for b in ranking] + [f"|B_l| {b}" for b in ranking]
    layer_rows = []
    for layer in bridge["layers"]:
        cells = [by_key.get((layer, b), {}) for b in ranking]
        overlap = next(
            (c.get("overlap_neurons") for c in cells if c.get("overlap_neurons") is not None), None
        )
        layer_rows.append(
            [layer, overlap] + [c.get("score") for c in cells] + [c.get("bridge_neurons") for c in cells]
        )
    per_layer = Table(
        f"{base}_layers",
        f"Per-layer scores {bridge['src']}->{bridge['tgt']} (real layer ids; empty: no neurons to compare)",
        columns,
        layer_rows,
    )
    parameters = Table(
        f"{base}_parameters",
        "Parameters of the selection",
        ["parameter", "value"],
        flatten(bridge["document"].get("parameters", {})),
    )
    return [summary, per_layer, parameters]


def evaluation_tables(evaluation: dict[str, Any]) -> list[Table]:
    base = evaluation_table_base(evaluation)
    tables = []
    if evaluation["conditions"]:
        keys = [
            "condition",
            "bridge",
            "accuracy",
            "ci_low",
            "ci_high",
            "wilson_low",
            "wilson_high",
            "n",
            "n_hits",
        ]
        places = decimals(
            *(
                (c.get(f"{k}_low"), c.get(f"{k}_high"))
                for c in evaluation["conditions"]
                for k in ("ci", "wilson")
            )
        )
        tables.append(
            Table(
                f"{base}_conditions",
                f"{evaluation['name']}: accuracy per condition (bootstrap and Wilson intervals)",
                keys,
                [[c.get(k) for k in keys] for c in evaluation["conditions"]],
                formats=dict.fromkeys(keys[2:7], _fixed_format(places)),
            )
        )
    if evaluation["comparisons"]:
        keys = [
            "bridge",
            "difference",
            "ci_low",
            "ci_high",
            "mcnemar_pvalue",
            "only_zero_shot",
            "only_bridge",
            "method",
        ]
        places = decimals(*((c.get("ci_low"), c.get("ci_high")) for c in evaluation["comparisons"]))
        tables.append(
            Table(
                f"{base}_comparisons",
                f"{evaluation['name']}: bridge minus zero-shot (paired)",
                keys,
                [[c.get(k) for k in keys] for c in evaluation["comparisons"]],
                formats={
                    **dict.fromkeys(keys[1:4], _fixed_format(places)),
                    "mcnemar_pvalue": _pvalue_format(None),  # an exact test: no floor
                },
            )
        )
    if evaluation["diagnostics"]:
        keys = ["condition"] + sorted({k for d in evaluation["diagnostics"] for k in d} - {"condition"})
        tables.append(
            Table(
                f"{base}_diagnostics",
                f"{evaluation['name']}: diagnostics per condition",
                keys,
                [[d.get(k) for k in keys] for d in evaluation["diagnostics"]],
            )
        )
    if evaluation["oracle"]:
        tables.append(
            Table(
                f"{base}_oracle",
                f"{evaluation['name']}: oracle bridge",
                ["field", "value"],
                flatten(evaluation["oracle"]),
            )
        )
    tables += logprob_tables(evaluation)
    shown = {"conditions", "comparisons", "diagnostics", "oracle", "logprob"} if tables else set()
    rest = {k: v for k, v in evaluation["document"].items() if k not in shown}
    tables.append(
        Table(
            base,
            f"{evaluation['name']}: " + ("parameters and provenance" if tables else "stored document"),
            ["field", "value"],
            flatten(rest),
        )
    )
    return tables


def bridge_table_base(bridge: dict[str, Any]) -> str:
    return f"bridge_{slug(bridge['src'] or '')}_{slug(bridge['tgt'] or '')}"


def logprob_tables(evaluation: dict[str, Any]) -> list[Table]:
    """The gold log-prob section of a BLI result (`evaluate bli --metric logprob|both`), if any:
    per condition the mean [interval], per bridge the paired difference from zero-shot."""
    section = evaluation["document"].get("logprob")
    if not isinstance(section, dict):
        return []
    base, name = evaluation_table_base(evaluation), evaluation["name"]
    keys = ["mean", "ci_low", "ci_high", "n"]
    conditions = [[c, *(v.get(k) for k in keys)] for c, v in (section.get("conditions") or {}).items()]
    keys_d = ["difference", "ci_low", "ci_high", "pvalue"]
    comparisons = [[b, *(v.get(k) for k in keys_d)] for b, v in (section.get("comparisons") or {}).items()]
    tables = [
        Table(
            f"{base}_logprob",
            f"{name}: gold log-prob per condition ({section.get('rule', '')}; bootstrap intervals)",
            ["condition", *keys],
            conditions,
        )
    ]
    if comparisons:
        tables.append(
            Table(
                f"{base}_logprob_comparisons",
                f"{name}: gold log-prob, bridge minus zero-shot (paired bootstrap, sign-flip p)",
                ["bridge", *keys_d],
                comparisons,
            )
        )
    return tables


def evaluation_table_base(evaluation: dict[str, Any]) -> str:
    return f"eval_{slug(evaluation['name'])}"


def build_tables(data: dict[str, Any]) -> dict[str, Table]:
    """Every table of the report by name, in page order."""
    tables = provenance_tables(data) + probe_tables(data) + corpus_tables(data)
    tables += [t for b in data["bridges"] for t in bridge_tables(b)]
    tables += [t for e in data["evaluations"] for t in evaluation_tables(e)]
    from neuronoverlap.report.interventions import intervention_tables  # imports this module

    tables += intervention_tables(data)
    tables += [
        Table(f"result_{slug(r['name'])}", f"Result {r['name']}", ["field", "value"], flatten(r["document"]))
        for r in data["other_results"]
    ]
    if data["neuron_sets"]:
        tables.append(
            Table(
                "neuron_sets",
                "Neuron sets saved in the store",
                ["name", "size", "label"],
                [[s["name"], s["size"], s["label"]] for s in data["neuron_sets"]],
            )
        )
    return {t.name: t for t in tables}


def _span(layers: list[int]) -> str:
    if not layers:
        return "none"
    if list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(str(layer) for layer in layers)
