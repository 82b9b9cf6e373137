"""The answer in plain sentences: which bridge, how sure, and whether it helped.

`bridge_verdict(selection, evaluation)` reads a bridge selection (a `BridgeSelection`, stored as
result `bridge-S-T`) and, optionally, the BLI result of the same pair (an `EvaluationResult`,
result `bli-S-T`). It is a pure function of those two objects (no store, no model), so
`neuronoverlap demo` and the report print the same words.

The rule, in one place (`CLEAR_PROBABILITY`, `choice_rule`):

* **A clear choice** needs the selection's bootstrap and two things from it: the chosen bridge
  ranks first in at least `CLEAR_PROBABILITY` (80%) of the resamples, and the paired interval of
  its lead over the runner-up (`bootstrap.top_two.interval`, first minus second in the same
  resamples) lies above 0. The first says the argmax is stable under resampling the probe word
  pairs; the second that the margin is not resampling noise. Overlapping per-bridge intervals are
  reported but do not decide: two overlapping 95% intervals can still differ by a paired test.
* **No clear choice** otherwise; the sentence says which condition failed and names the bridges
  whose interval overlaps the chosen one's.
* **No interval** when the selection was run without a bootstrap: nothing says how sure it is.
* **One candidate**: nothing to choose between.

What the page calls the bridge ranked first (`first_place`): "chosen" only under a clear choice or
as the only candidate; otherwise "ranked first", so that nothing contradicts "No clear choice".

Whether the bridge helped (`effect_rule`): BLI accuracy through the chosen bridge minus zero-shot
on the same words, with its paired bootstrap interval. It **helped** when the interval lies
above 0, **hurt** when below, and otherwise **BLI cannot tell** (this includes every accuracy
being 0 and no word differing between the two conditions, whose interval is [0, 0]).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from neuronoverlap.errors import InputError
from neuronoverlap.numbers import decimals, fixed, p_is, permutation_floor, span

if TYPE_CHECKING:
    from neuronoverlap.bridge.result import BridgeSelection
    from neuronoverlap.evaluation.results import EvaluationResult

#: Share of bootstrap resamples in which the chosen bridge must rank first for a clear choice.
CLEAR_PROBABILITY = 0.8

#: Outcomes of `choice_rule` and `effect_rule`.
CHOICES = ("clear", "unclear", "no interval", "one candidate")
EFFECTS = ("helped", "hurt", "cannot tell", "not evaluated")


@dataclass(frozen=True)
class Verdict:
    """The answer for one pair: `headline` (one sentence or two) and `lines` (the evidence).

    `choice` is one of `CHOICES`, `effect` one of `EFFECTS`; `chosen` the selected bridge."""

    src: str
    tgt: str
    chosen: str
    choice: str
    effect: str
    headline: str
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The headline, then the lines indented: what a terminal prints."""
        return "\n".join([self.headline, *(f"  {line}" for line in self.lines)])

    def to_dict(self) -> dict[str, Any]:
        """The fields, and `label`: what the page calls the bridge ranked first (`first_place`)."""
        return {**asdict(self), "label": first_place(self.choice)}


def _names(codes: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return codes[0] if len(codes) == 1 else ", ".join(codes[:-1]) + f" and {codes[-1]}"


#: The verdicts under which the bridge ranked first is not "chosen", and why (said beside it).
NOT_CHOSEN = {"unclear": "no clear choice", "no interval": "no interval", "unreadable": "no verdict"}


def first_place(choice: str) -> str:
    """What the report calls the bridge ranked first under a verdict's `choice`: 'chosen' for a
    clear choice or the only candidate, else 'ranked first'."""
    return "ranked first" if choice in NOT_CHOSEN else "chosen"


def first_place_note(choice: str) -> str:
    """'' under a clear choice, else ' ranked first (no clear choice)': what follows the bridge."""
    return f" ranked first ({NOT_CHOSEN[choice]})" if choice in NOT_CHOSEN else ""


def first_place_line(selection: BridgeSelection) -> str:
    """'chosen bridge: fr', or 'ranked first: fr (no clear choice)': what the command line prints
    after a selection."""
    choice = choice_rule(selection)
    label = "chosen bridge" if first_place(choice) == "chosen" else "ranked first"
    note = f" ({NOT_CHOSEN[choice]})" if choice in NOT_CHOSEN else ""
    return f"{label}: {selection.chosen}{note}"


def _ends(interval: list[float | None] | None) -> tuple[float | None, float | None]:
    return (interval[0], interval[1]) if interval else (None, None)


def _overlaps(a: list[float | None] | None, b: list[float | None] | None) -> bool | None:
    """Whether two intervals share a point (None when either is missing)."""
    if not a or not b or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def choice_rule(selection: BridgeSelection) -> str:
    """One of `CHOICES` for a selection (the rule of the module docstring)."""
    if len(selection.candidates) < 2:
        return "one candidate"
    boot = selection.bootstrap
    if boot is None or not boot.selection_probability:
        return "no interval"
    probability = boot.selection_probability[selection.chosen]
    top_two = boot.top_two
    margin_clear = top_two is None or (top_two["interval"][0] is not None and top_two["interval"][0] > 0)
    return "clear" if probability >= CLEAR_PROBABILITY and margin_clear else "unclear"


def effect_rule(difference_ci: list[float] | None) -> str:
    """One of `EFFECTS` from the paired interval of (bridge - zero-shot) accuracy."""
    if difference_ci is None:
        return "not evaluated"
    low, high = difference_ci
    if low > 0:
        return "helped"
    if high < 0:
        return "hurt"
    return "cannot tell"


def _null_sets(selection: BridgeSelection) -> str:
    matched = selection.parameters.get("pool") == "matched" or (
        selection.options is not None and selection.options.pool == "matched"
    )
    return "random neuron sets matched on activity" if matched else "random neuron sets of the same size"


def _selection_lines(selection: BridgeSelection, choice: str) -> tuple[str, list[str]]:
    src, tgt, chosen = selection.src, selection.tgt, selection.chosen
    scores, pvalues = selection.scores, selection.pvalues
    ranking = selection.ranking()
    pair = f"{src}->{tgt}"
    boot = selection.bootstrap
    statistic = {"calibrated": "calibrated z", "effect": "effect"}.get(selection.method, "score")
    n_random = selection.parameters.get("n_random")
    floor = permutation_floor(n_random) if n_random else None
    intervals = boot.intervals if boot is not None and boot.intervals else {}
    places = decimals(*intervals.values())  # scores and intervals to the same decimals
    what = "Chosen bridge" if first_place(choice) == "chosen" else "Ranked first"
    lines = [
        f"{what} for {pair}: {chosen}, {statistic} {fixed(scores[chosen], places)}"
        + (
            f" ({p_is(pvalues[chosen], floor=floor)} against {n_random or 'the'} {_null_sets(selection)})."
            if pvalues[chosen] is not None
            else "."
        )
    ]
    if choice == "one candidate":
        return f"Bridge for {pair}: {chosen}, the only candidate (nothing to choose between).", lines
    runner = ranking[1] if len(ranking) > 1 else None
    if choice == "no interval":
        if runner is not None:
            lines.append(
                f"Runner-up ({runner}): {statistic} {fixed(scores[runner], places)}, a margin of "
                f"{fixed(_diff(scores[chosen], scores[runner]), places)} with no interval."
            )
        lines.append(
            "The selection has no interval: it was run without a bootstrap "
            "(`select-bridge --bootstrap N` gives intervals and selection probabilities)."
        )
        return (
            f"Bridge for {pair}: {chosen}, with no interval (the selection was run without a "
            "bootstrap, so nothing says how sure it is)."
        ), lines

    level = f"{boot.level:.0%}"
    first = boot.selection_probability
    n = boot.n_resamples
    own = intervals[chosen]
    lines[0] = lines[0][:-1] + f"; {level} interval {span(*_ends(own), places)}."
    others = ", ".join(f"{b} {first[b]:.0%}" for b in ranking if b != chosen and first[b])
    lines.append(
        f"{chosen} ranked first in {first[chosen]:.0%} of {n} bootstrap resamples"
        + (f"; {others}." if others else ".")
    )
    top_two = boot.top_two
    if top_two is not None:
        second = top_two["second"]
        overlap = _overlaps(own, intervals[second])
        lead = decimals(top_two["interval"])
        lines.append(
            f"Margin over the runner-up ({second}): {fixed(top_two['difference'], lead)} "
            f"({level} paired interval {span(*_ends(top_two['interval']), lead, signed=True)}; "
            f"{chosen} ahead in {top_two['share_first_ahead']:.0%} of resamples); their "
            f"{level} intervals "
            + ("overlap." if overlap else "do not overlap." if overlap is False else "are not all known.")
        )
        if selection.near_tie:  # issue 26: named as such
            lines.append(f"A near tie: the paired interval of {chosen} - {second} includes 0.")
    close = [b for b in ranking if b != chosen and _overlaps(own, intervals[b])]
    if choice == "clear":
        return (
            f"Bridge for {pair}: {chosen}, a clear choice (first in "
            f"{first[chosen]:.0%} of resamples, ahead of {runner} beyond the noise)."
        ), lines
    why = []
    if first[chosen] < CLEAR_PROBABILITY:
        why.append(f"{chosen} ranked first in only {first[chosen]:.0%} of bootstrap resamples")
    if top_two is not None and not top_two["interval"][0] > 0:
        why.append(f"the {level} interval of its lead over the runner-up ({top_two['second']}) includes 0")
    tied = f"; the {level} intervals of {_names(close)} overlap that of {chosen}" if close else ""
    lines.append(
        f"A clear choice needs first place in at least {CLEAR_PROBABILITY:.0%} of resamples "
        "and a lead over the runner-up whose interval excludes 0."
    )
    return f"No clear choice of bridge for {pair}: {' and '.join(why)}{tied}.", lines


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _effect_lines(
    selection: BridgeSelection, evaluation: EvaluationResult | None
) -> tuple[str, str, list[str]]:
    from neuronoverlap.evaluation.results import ZERO_SHOT, bridge_condition

    chosen = selection.chosen
    if evaluation is None:
        return "not evaluated", "No BLI evaluation of this pair: whether it helps is not known.", []
    pair = (evaluation.params.get("src"), evaluation.params.get("tgt"))
    if None not in pair and pair != (selection.src, selection.tgt):
        raise InputError(
            f"the BLI result is for {pair[0]}-{pair[1]}, the bridge selection for "
            f"{selection.src}-{selection.tgt}"
        )
    comparison = evaluation.comparisons.get(chosen)
    zero = evaluation.conditions.get(ZERO_SHOT)
    bridged = evaluation.conditions.get(bridge_condition(chosen))
    if comparison is None or zero is None or bridged is None:
        evaluated = sorted(evaluation.comparisons)
        also = f" (evaluated: {', '.join(evaluated)})" if evaluated else ""
        which = (
            "the chosen bridge"
            if first_place(choice_rule(selection)) == "chosen"
            else "the bridge ranked first"
        )
        return ("not evaluated", f"BLI did not evaluate {which} {chosen}{also}.", [])
    zero, bridged = zero.accuracy, bridged.accuracy
    ci = list(comparison.difference_ci)
    effect = effect_rule(ci)
    level = f"{zero.confidence:.0%}"
    own = decimals(*((c.ci_low, c.ci_high) for c in (zero, bridged)))
    accuracies = (
        f"{fixed(zero.accuracy, own)} zero-shot and {fixed(bridged.accuracy, own)} through "
        f"{chosen} on {zero.n} words"
    )
    mcnemar = comparison.mcnemar
    places = decimals(ci)
    detail = (
        f"BLI precision@1 through {chosen} minus zero-shot: "
        f"{fixed(comparison.difference, places, signed=True)} "
        f"({level} paired interval {span(*ci, places, signed=True)})"
    )
    if mcnemar.pvalue is not None:
        detail += (
            f"; McNemar {p_is(mcnemar.pvalue)} ({mcnemar.only_a} words right only "
            f"zero-shot, {mcnemar.only_b} only through {chosen})"
        )
    lines = [detail + "."]
    if effect == "helped":
        sentence = f"BLI: {chosen} helped, {accuracies}."
    elif effect == "hurt":
        sentence = f"BLI: {chosen} hurt, {accuracies}."
    else:
        none_right = zero.accuracy == 0 and bridged.accuracy == 0
        if none_right:
            why = "no word translated right either way"
        elif not (mcnemar.only_a or mcnemar.only_b):
            why = "no word differs between the two"
        else:
            why = "the interval of the difference includes 0"
        sentence = f"BLI cannot tell: {accuracies} ({why})."
    return effect, sentence, lines


def bridge_verdict(selection: BridgeSelection, evaluation: EvaluationResult | None = None) -> Verdict:
    """The verdict on a bridge selection and, when given, the BLI result of the same pair.

    A BLI result of another pair is an `InputError`. The rule is in the module docstring."""
    choice = choice_rule(selection)
    headline, lines = _selection_lines(selection, choice)
    effect, sentence, more = _effect_lines(selection, evaluation)
    return Verdict(
        selection.src,
        selection.tgt,
        selection.chosen,
        choice,
        effect,
        f"{headline} {sentence}",
        lines + more,
    )


__all__ = [
    "CHOICES",
    "CLEAR_PROBABILITY",
    "EFFECTS",
    "Verdict",
    "bridge_verdict",
    "choice_rule",
    "effect_rule",
    "first_place",
    "first_place_line",
    "first_place_note",
    "NOT_CHOSEN",
]
