"""A bridge selection as printed lines (the command line and the demo print it)."""

from __future__ import annotations

from neuronoverlap.numbers import decimals, fixed, permutation_floor, probability, pvalue

LABELS = {
    "effect": "effect (raw score minus the matched random sets' mean)",
    "calibrated": "calibrated z",
    "reference": "raw reference score (not calibrated)",
}


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def bridge_table(result) -> list[str]:
    """The ranking as printed lines: statistics per bridge and the layers it was scored on
    (numbers shown by `neuronoverlap.numbers`: p-values with the floor of the random sets;
    probabilities to two digits with their Monte Carlo error); a near tie named."""
    boot = result.bootstrap
    first = result.selection_probability or {}
    error = (boot.probability_error if boot is not None else None) or {}
    effect = result.effect or {}
    holm = result.holm_pvalues or {}
    n_random = result.parameters.get("n_random")
    floor = permutation_floor(n_random) if n_random else None
    lines = [
        f"  {'rank':>4}  {'bridge':6}  {'effect':>9}  {'z':>7}  {'p':>7}  {'p(Holm)':>7}  {'raw':>9}  "
        f"{'reference':>9}  {'P(first)':>11}  layers:|B_l|"
    ]
    for rank, b in enumerate(result.ranking(), start=1):
        sizes = " ".join(f"{layer}:{size[1]}" for layer, size in result.set_sizes[b].items())
        shown = "-" if b not in first else probability(first[b]) + (f"±{error[b]:.2f}" if b in error else "")
        lines.append(
            f"  {rank:>4}  {b:6}  {_num(effect.get(b), '.4g'):>9}  {result.calibrated[b]:>7.2f}  "
            f"{pvalue(result.pvalues[b], floor=floor):>7}  "
            f"{'-' if holm.get(b) is None else pvalue(holm[b], floor=floor):>7}  "
            f"{_num(result.raw_scores[b], '.4g'):>9}  {_num(result.reference_scores[b], '.4g'):>9}  "
            f"{shown:>11}  {sizes}"
        )
    if boot is not None and boot.top_two is not None:
        top = boot.top_two
        low, high = top["interval"]
        places = decimals((low, high))
        lines.append(
            f"  {top['first']} - {top['second']}: {fixed(top['difference'], places)} "
            f"[{fixed(low, places)}, {fixed(high, places)}] ({boot.level:.0%} bootstrap interval, "
            f"{boot.n_resamples} resamples of word pairs, sets "
            f"{'rebuilt' if boot.sets_rebuilt else 'held fixed'})"
        )
        if result.near_tie:
            lines.append(f"  near tie: the interval of {top['first']} - {top['second']} includes 0")
    if result.calibration_error is not None:
        draws = result.parameters.get("n_draws")
        lines.append(
            f"  Monte Carlo error of the ranking statistic over {draws} calibration draws: "
            + ", ".join(f"{b} {e:.2g}" for b, e in result.calibration_error.items())
        )
    if result.nuisance_r2 is not None:
        lines.append(
            "  nuisance R^2 (counted tokens, direction): "
            + ", ".join(f"{name} {_num(r2, '.2f')}" for name, r2 in result.nuisance_r2.items())
        )
    if result.permutation_pvalues is not None:
        n_permutations = result.parameters.get("n_permutations")
        permutations = permutation_floor(n_permutations) if n_permutations else None
        lines.append(
            "  within-direction permutation p (raw score): "
            + ", ".join(f"{b} {pvalue(p, floor=permutations)}" for b, p in result.permutation_pvalues.items())
        )
    lines.append(f"  ranked by: {LABELS.get(result.method, result.method)}")
    return lines
