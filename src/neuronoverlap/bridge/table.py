"""A bridge selection as printed lines (the command line and the demo print it)."""

from __future__ import annotations

from neuronoverlap.numbers import decimals, fixed, permutation_floor, probability, pvalue


def bridge_table(result) -> list[str]:
    """The ranking as printed lines: statistics per bridge and the layers it was scored on
    (numbers shown by `neuronoverlap.numbers`: p-values with the floor of the random sets)."""
    first = result.selection_probability or {}
    n_random = result.parameters.get("n_random")
    floor = permutation_floor(n_random) if n_random else None
    lines = [
        f"  {'rank':>4}  {'bridge':6}  {'calibrated':>10}  {'p(calib)':>8}  {'raw':>9}  "
        f"{'reference':>9}  {'P(first)':>8}  layers:|B_l|"
    ]
    for rank, b in enumerate(result.ranking(), start=1):
        sizes = " ".join(f"{layer}:{size[1]}" for layer, size in result.set_sizes[b].items())
        raw, ref = result.raw_scores[b], result.reference_scores[b]
        p = pvalue(result.pvalues[b], floor=floor)
        lines.append(
            f"  {rank:>4}  {b:6}  {result.calibrated[b]:>10.3f}  {p:>8}  "
            f"{'-' if raw is None else f'{raw:.4g}':>9}  {'-' if ref is None else f'{ref:.4g}':>9}  "
            f"{probability(first.get(b)):>8}  {sizes}"
        )
    if result.bootstrap is not None and result.bootstrap.top_two is not None:
        top = result.bootstrap.top_two
        low, high = top["interval"]
        places = decimals((low, high))
        lines.append(
            f"  {top['first']} - {top['second']}: {fixed(top['difference'], places)} "
            f"[{fixed(low, places)}, {fixed(high, places)}] "
            f"({result.bootstrap.level:.0%} bootstrap interval, "
            f"{result.bootstrap.n_resamples} resamples of word pairs)"
        )
    if result.permutation_pvalues is not None:
        n_permutations = result.parameters.get("n_permutations")
        permutations = permutation_floor(n_permutations) if n_permutations else None
        lines.append(
            "  within-direction permutation p (raw score): "
            + ", ".join(f"{b} {pvalue(p, floor=permutations)}" for b, p in result.permutation_pvalues.items())
        )
    label = "calibrated z" if result.method == "calibrated" else "raw reference score (not calibrated)"
    lines.append(f"  ranked by: {label}")
    return lines
