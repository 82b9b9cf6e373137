"""A bridge selection as printed lines (the command line and the demo print it)."""

from __future__ import annotations


def bridge_table(result) -> list[str]:
    """The ranking as printed lines: statistics per bridge and the layers it was scored on."""
    probability = result.selection_probability or {}
    lines = [
        f"  {'rank':>4}  {'bridge':6}  {'calibrated':>10}  {'p(calib)':>8}  {'raw':>9}  "
        f"{'reference':>9}  {'P(first)':>8}  layers:|B_l|"
    ]
    for rank, b in enumerate(result.ranking(), start=1):
        sizes = " ".join(f"{layer}:{size[1]}" for layer, size in result.set_sizes[b].items())
        raw, ref = result.raw_scores[b], result.reference_scores[b]
        lines.append(
            f"  {rank:>4}  {b:6}  {result.calibrated[b]:>10.3f}  {result.pvalues[b]:>8.4f}  "
            f"{'-' if raw is None else f'{raw:.4g}':>9}  {'-' if ref is None else f'{ref:.4g}':>9}  "
            f"{probability.get(b, float('nan')):>8.3f}  {sizes}"
        )
    if result.bootstrap is not None and result.bootstrap.top_two is not None:
        top = result.bootstrap.top_two
        low, high = top["interval"]
        lines.append(
            f"  {top['first']} - {top['second']}: {top['difference']:.3f} "
            f"[{low:.3f}, {high:.3f}] ({result.bootstrap.level:.0%} bootstrap interval, "
            f"{result.bootstrap.n_resamples} resamples of word pairs)"
        )
    if result.permutation_pvalues is not None:
        lines.append(
            "  within-direction permutation p (raw score): "
            + ", ".join(f"{b} {p:.4f}" for b, p in result.permutation_pvalues.items())
        )
    label = "calibrated z" if result.method == "calibrated" else "raw reference score (not calibrated)"
    lines.append(f"  ranked by: {label}")
    return lines
