"""Where each of a neuron's n(n-1)/2 sample pairs sits in its Gram features.

The pairs are laid out circulantly, so that every step is a few vectorised operations over all
pairs rather than a loop over the n - 1 diagonals of the triangle:
- block: an [s, n] array, s = (n-1)//2, whose entry (k-1, a) is the pair (a, (a+k) mod n);
  for k <= s these are all unordered pairs whose circular distance is k, each once;
- half (n even only): the pairs (a, a + n/2) for a < n/2, the pairs at circular distance n/2.
Block then half make the n(n-1)/2 "pair values" of a neuron, after its n diagonal values.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def pair_steps(n: int) -> tuple[int, int]:
    """(s, h): the block's rows (circular distances 1..s) and the half row's length."""
    return (n - 1) // 2, (n // 2 if n % 2 == 0 else 0)


def wrapped_partners(values: Float[Tensor, "row sample"], steps: int) -> Tensor:
    """A [row, steps, n] view whose entry (k-1, a) is values[:, (a + k) mod n]."""
    count, n = values.shape
    wrapped = torch.cat([values, values[:, :steps]], dim=1)  # a new, contiguous tensor
    return wrapped.as_strided((count, steps, n), (n + steps, 1, 1), wrapped.storage_offset() + 1)


def split_pairs(pairs: Float[Tensor, "row pair"], n: int) -> tuple[Tensor, Tensor]:
    """Views of the block [row, s, n] and the half row [row, h] of each row's pair values."""
    steps, _ = pair_steps(n)
    return pairs[:, : steps * n].view(pairs.shape[0], steps, n), pairs[:, steps * n :]


def fill_pairs(rows: Float[Tensor, "row sample"], pairs: Tensor, combine) -> None:
    """pairs = combine(x_a, x_b) for every pair, e.g. torch.sub (then squared) or torch.mul;
    combine(second, first, out=...) must write into out."""
    n = rows.shape[1]
    steps, half = pair_steps(n)
    block, half_row = split_pairs(pairs, n)
    combine(wrapped_partners(rows, steps), rows[:, None, :], out=block)
    if half:
        combine(rows[:, half:], rows[:, :half], out=half_row)


def add_pair_row_sums(pairs: Float[Tensor, "row pair"], sums: Float[Tensor, "row sample"]) -> None:
    """sums[a] += sum over b != a of the pair value (a, b) (a symmetric matrix's row sums)."""
    n = sums.shape[1]
    steps, half = pair_steps(n)
    block, half_row = split_pairs(pairs, n)
    sums.add_(block.sum(dim=1))  # each pair (a, a+k) to a
    for k in range(1, steps + 1):  # and to (a + k) mod n
        sums[:, k:].add_(block[:, k - 1, : n - k])
        sums[:, :k].add_(block[:, k - 1, n - k :])
    if half:
        sums[:, :half].add_(half_row)
        sums[:, half:].add_(half_row)


def subtract_pair_sums(pairs: Float[Tensor, "row pair"], shift: Float[Tensor, "row sample"]) -> None:
    """pairs(a, b) -= shift[a] + shift[b]."""
    n = shift.shape[1]
    steps, half = pair_steps(n)
    block, half_row = split_pairs(pairs, n)
    block.sub_(shift[:, None, :]).sub_(wrapped_partners(shift, steps))
    if half:
        half_row.sub_(shift[:, :half] + shift[:, half:])


def layout_pairs(n: int, device: torch.device) -> tuple[Int[Tensor, " pair"], Int[Tensor, " pair"]]:
    """(a, b) of the pair at each of the n(n-1)/2 positions."""
    steps, half = pair_steps(n)
    first = torch.arange(n, device=device).repeat(steps)
    distance = torch.arange(1, steps + 1, device=device).repeat_interleave(n)
    lower = torch.arange(half, device=device)
    return (torch.cat([first, lower]), torch.cat([(first + distance) % n, lower + half]))


def pair_positions(
    first: Int[Tensor, "*shape"], second: Int[Tensor, "*shape"], n: int
) -> Int[Tensor, "*shape"]:
    """The position of the unordered pair {first, second} (first != second) in the layout."""
    steps, _ = pair_steps(n)
    distance = (second - first) % n
    forward = distance <= steps
    start = torch.where(forward, first, second)
    step = torch.where(forward, distance, n - distance)
    position = (step - 1) * n + start
    opposite = 2 * distance == n  # only for an even n: the half row, keyed by the smaller
    return torch.where(opposite, steps * n + torch.minimum(first, second), position)
