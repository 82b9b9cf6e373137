"""What a validation study writes and prints: validate.json, validate.png, the per-pair answer
files and the plain-text tables; and a finished study folder read back (`StudyFolder`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.validation import PairRun, StudyConfig
from neuronoverlap.numbers import p_is, permutation_floor


def _two_rules(name: str, entry: Mapping, rules: Mapping[str, object]) -> tuple[str, str]:
    """The rules a and b of a `differences` entry: its "rules", or, in a study written before they
    were stored, its key 'a-b' split where both sides are rule names (names may hold '-': step-1)."""
    if "rules" in entry:
        return tuple(entry["rules"])  # type: ignore[return-value]
    for i, char in enumerate(name):
        if char == "-" and name[:i] in rules and name[i + 1 :] in rules:
            return name[:i], name[i + 1 :]
    return tuple(name.split("-", 1))  # type: ignore[return-value]


def study_table(result: dict) -> str:
    """Plain-text tables: per pair (p@1 non-identical), and pooled per rule."""
    rows = []
    for name, p in result["pairs"].items():
        accs = " ".join(f"{b} {a:.3f}" for b, a in p["accuracy"].items())
        ranks = " ".join(
            f"{rule} {c}(#{p['rank'].get(rule)})" for rule, c in p["choices"].items() if c is not None
        )
        rows.append(
            f"{name}: n {p['n_non_identical']} non-identical (+{p['n_identical']}); "
            f"zero-shot {p['zero_shot']:.3f}; {accs}"
        )
        rows.append(f"    choices: {ranks}")
    header = f"{'rule':<9} {'mean regret':>11}  {'CI (words)':<18} {'CI (pairs+words)':<18}"
    rows.append(f"{header} {'top 2':>6} {'pairs':>5}")
    for rule, v in result["rules"].items():
        ci = f"[{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]"
        ci_pairs = f"[{v['ci_low_pairs']:+.3f}, {v['ci_high_pairs']:+.3f}]" if "ci_low_pairs" in v else ""
        rows.append(
            f"{rule:<9} {v['mean_regret']:>+11.3f}  {ci:<18} {ci_pairs:<18} {v['share_top2']:>6.2f} "
            f"{v['n_pairs']:>5}"
        )
    for name, v in (result.get("differences") or {}).items():
        a, b = _two_rules(name, v, result["rules"])
        rows.append(
            f"p@1({a}'s choice) - p@1({b}'s choice): {v['difference']:+.3f} "
            f"[{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] words, "
            f"[{v['ci_low_pairs']:+.3f}, {v['ci_high_pairs']:+.3f}] pairs+words ({v['n_pairs']} pairs)"
        )
    agreement = result.get("logprob_agreement")
    if agreement:
        rows.append(
            f"best bridge by gold log-prob = best by p@1 on {agreement['n_agree']} of "
            f"{agreement['n_pairs']} pairs"
        )
    tau = result.get("kendall_tau")
    if tau is not None:
        n = tau.get("n_permutations")  # exact: the p-value itself; Monte Carlo: floored at 1 / (B + 1)
        floor = permutation_floor(n) if n and not tau["exact"] else None
        rows.append(
            f"Kendall tau (selection score vs accuracy, mean over pairs): {tau['tau']:+.3f}, "
            f"permutation {p_is(tau['pvalue'], floor=floor)} ({'exact' if tau['exact'] else 'Monte Carlo'})"
        )
    if "choice" in result:  # issue 27
        from neuronoverlap.evaluation.choice import choice_table

        rows.append(choice_table(result["choice"]))
    return "\n".join(rows)


def study_figure(result: dict) -> bytes:
    """PNG: the rank of the selection's choice per pair (by p@1 on non-identical words), and each
    rule's mean held-out regret with its interval."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = list(result["pairs"])
    ranks = [result["pairs"][n]["rank"].get("hsic", 0) for n in names]
    left.bar(names, ranks, color="tab:blue")
    left.set_ylabel("rank of the HSIC choice (1 = best)")
    left.set_ylim(0, max([len(result["pairs"][n]["bridges"]) for n in names]) + 0.5)
    left.tick_params(axis="x", rotation=45)
    rules = list(result["rules"])
    means = [result["rules"][r]["mean_regret"] for r in rules]
    errors = [
        [m - result["rules"][r]["ci_low"] for r, m in zip(rules, means, strict=True)],
        [result["rules"][r]["ci_high"] - m for r, m in zip(rules, means, strict=True)],
    ]
    right.bar(rules, means, yerr=errors, capsize=4, color="tab:orange")
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylabel("held-out regret (p@1)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_study(result: dict, runs: Mapping[str, PairRun], out: str | os.PathLike[str]) -> dict:
    """Write validate.json, validate.png and pairs/{pair}.json (every answer) under `out`."""
    folder = Path(out)
    (folder / "pairs").mkdir(parents=True, exist_ok=True)
    paths = {"summary": folder / "validate.json", "figure": folder / "validate.png"}
    paths["summary"].write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    paths["figure"].write_bytes(study_figure(result))
    for name, r in runs.items():
        (folder / "pairs" / f"{name}.json").write_text(
            json.dumps(asdict(r), ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return paths


def _read_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no {path}: not a finished study folder (`neuronoverlap validate --out`)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"unreadable {path}: {exc}") from None
    if not isinstance(document, dict):
        raise InputError(f"{path} is not a study file (a JSON object was expected)")
    return document


class StudyFolder:
    """One finished study folder: its validate.json and its pairs' stored answers."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"no study folder {self.folder}")
        self.summary = _read_json(self.folder / "validate.json")
        if self.summary.get("task") != "validate":
            raise InputError(f"{self.folder / 'validate.json'} is not a validation study's summary")
        self.runs: dict[str, PairRun] = {}
        for name in self.summary.get("pairs", {}):
            data = _read_json(self.folder / "pairs" / f"{name}.json")
            try:
                self.runs[name] = PairRun(**data)
            except TypeError as exc:
                raise InputError(f"{self.folder / 'pairs' / f'{name}.json'} is damaged: {exc}") from None
        if not self.runs:
            raise InputError(f"{self.folder / 'validate.json'} lists no pair")

    @property
    def config(self) -> dict:
        return self.summary["config"]

    @property
    def fingerprint(self) -> str | None:
        return (self.summary.get("model") or {}).get("fingerprint")

    def study_config(self) -> StudyConfig:
        return StudyConfig.from_dict(self.config)

    def scores(self, name: str) -> Mapping[str, float] | None:
        return self.summary["pairs"][name].get("scores")
