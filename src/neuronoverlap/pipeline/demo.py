"""The main job end to end on one pair: probes, FLORES statistics, neuron sets, the bridge
choice, BLI through it, the report. Resumes from the store when run again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES
from neuronoverlap.options import (
    DEMO_CORPORA,
    DEMO_EVAL_N,
    DEMO_OUT,
    DEMO_PAIR,
    DEMO_PROBES,
    DEMO_STORE,
    BridgeOptions,
    CorpusOptions,
    ProbeOptions,
)
from neuronoverlap.pipeline.bridge import choose_bridge, pair_codes
from neuronoverlap.pipeline.evaluation import bli_through
from neuronoverlap.pipeline.model import ModelSource
from neuronoverlap.pipeline.recording import (
    check_flores_sizes,
    ensure_corpora,
    ensure_pair_probes,
)

EVAL_BRIDGES = ("chosen", "all", "none")
STAGES = 5


@dataclass
class DemoResult:
    """What the demo produced: the selection, the BLI result (None when skipped), the report's
    outputs and the seconds each stage took."""

    selection: Any
    bli: Any
    report: Any
    verdict: Any  # report.verdict.Verdict: the answer in plain sentences, with its uncertainty
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(
    pair: str | tuple[str, str] = DEMO_PAIR,
    bridges: str | Sequence[str] = DEFAULT_BRIDGES,
    store: str | Path = DEMO_STORE,
    out: str | Path = DEMO_OUT,
    model=None,
    probes: ProbeOptions = DEMO_PROBES,
    corpora: CorpusOptions = DEMO_CORPORA,
    selection: BridgeOptions = BridgeOptions(),  # noqa: B008 (frozen)
    eval_n: int = DEMO_EVAL_N,
    eval_bridges: str = "chosen",
    shots: int = 0,
    data_dir=None,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the main job (stages printed through `say`); every input is checked first.

    Args:
        pair, bridges: the low-resource pair and the candidate bridges.
        store, out: the HDF5 store (resumed) and the folder of the outputs and the report.
        model: a loaded model, a spec or None (the store's model, else 'embedded').
        eval_bridges: BLI through the 'chosen' bridge, 'all' candidates, or 'none'.

    Returns:
        A `DemoResult`; out/report/report.html leads with the answer.
    """
    src, tgt, candidates = pair_codes(pair, bridges)
    if eval_bridges not in EVAL_BRIDGES:
        raise InputError(f"eval_bridges must be one of {', '.join(EVAL_BRIDGES)}, got {eval_bridges!r}")
    check_flores_sizes([src, tgt, *candidates], corpora.n_sentences, corpora.split, data_dir, "--corpus-n")
    if eval_bridges != "none":  # the BLI test dictionary, read before any work
        from neuronoverlap.data import load_dictionary

        test_words = load_dictionary(src, tgt, split="test", data_dir=data_dir).n_source_words
        if eval_n > test_words:
            raise InputError(f"--eval-n {eval_n} exceeds the {test_words} test words of {src}-{tgt}")
    source = ModelSource.of(model)
    out = Path(out)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def stage(number: int, title: str) -> float:
        say(f"[{number}/{STAGES}] {title}")
        return time.perf_counter()

    t = stage(
        1, f"probe sets for {src}<->{tgt} and bridges {','.join(candidates)} ({probes.n_samples} pairs each)"
    )
    ensure_pair_probes(store, src, tgt, candidates, source, probes, data_dir, progress, record=True)
    timings["probes"] = time.perf_counter() - t

    t = stage(2, f"FLORES-200 statistics ({corpora.n_sentences} sentences per language)")
    ensure_corpora(store, [src, tgt, *candidates], source, corpora, data_dir, progress, record=True)
    timings["corpora"] = time.perf_counter() - t

    t = stage(
        3,
        f"neuron sets and bridge selection ({selection.method}, {selection.n_random} random sets, "
        f"{selection.n_bootstrap} bootstrap resamples)",
    )
    result = choose_bridge(
        store,
        (src, tgt),
        candidates,
        source,
        options=selection,
        probes=probes,
        data_dir=data_dir,
        progress=progress,
    )
    result.write_json(out / f"{result.key}.json")
    timings["bridge selection"] = time.perf_counter() - t
    from neuronoverlap.bridge.table import bridge_table
    from neuronoverlap.report.verdict import first_place_line

    say("\n".join("    " + line for line in bridge_table(result)))
    say(f"      {first_place_line(result)}")

    bli = None
    if eval_bridges == "none":
        t = stage(4, "BLI skipped (--eval-bridges none)")
    else:
        every = eval_bridges == "all"
        through = result.ranking() if every else [result.chosen]
        t = stage(4, f"BLI {src}->{tgt} on {eval_n} test words: zero-shot vs {','.join(through)}")
        bli = bli_through(
            store,
            source,
            (src, tgt),
            through,
            n=eval_n,
            seed=selection.seed,
            shots=shots,
            batch_size=probes.batch_size,
            max_new_tokens=probes.max_new_tokens,
            ranking=result.ranking() if every else None,
            data_dir=data_dir,
            out=out,
            progress=progress,
        )
        say("\n".join("      " + line for line in bli.table().splitlines()))
    timings["evaluation"] = time.perf_counter() - t

    t = stage(5, f"report -> {out / 'report'}")
    from neuronoverlap.report import write_report

    report = write_report(store, out / "report", agnostic_share=selection.agnostic_share)
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    from neuronoverlap.report.verdict import bridge_verdict

    verdict = bridge_verdict(result, bli)
    return DemoResult(result, bli, report, verdict, timings)
