"""The intervention experiments from a store: LAPE's test (`intervention_perplexity`) and
BridgeX's premise (`intervention_bli`), each kept in the store as an `InterventionResult`.

- LAPE's test: switch off each language's language-specific neurons (LAPE sets from the store's
  FLORES corpora) and measure the change of every language's FLORES token NLL: a set x language
  matrix of changes and of z against band-matched random sets. The claim: a dominant diagonal.
- BridgeX's premise: for s-t, switch off O(s,t), then each B(b; s,t); BLI s->t zero-shot and
  through each candidate (precision@1, gold log-probability, answers in the target's script),
  against random sets matched to each set. Does ablating B(b) hurt the condition through b more
  than those through other bridges, and more than a random set? Steering (optional): add
  mean(b) - mean(s) (FLORES mean activations) on O(s,t) and measure zero-shot BLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.interventions.effects import SetEffect, bootstrap_mean_interval, set_effect
from neuronoverlap.interventions.result import InterventionResult, save_result
from neuronoverlap.options import (
    BLI_INTERVENTION,
    CORPUS_STATISTICS,
    EXACT_NULLS,
    NULL_CONDITIONS,
    InterventionOptions,
    check_at_least,
    check_choice,
    check_finite,
)

#: statistics the store records per corpus and neuron (CorpusView).
STORED_STATISTICS = ("mean", "probability")

#: The smallest value of each experiment's own sizes (`intervene` names their flags:
#: cli/options.py EXPERIMENT_FLAGS).
AT_LEAST = {"n_sentences": 1, "max_tokens": 2, "n_words": 1, "max_new_tokens": 1}


def _check_sizes(owner: str, **sizes: int) -> None:
    for name, value in sizes.items():
        check_at_least(owner, name, value, AT_LEAST[name])


def stored_statistic(store, statistic: str, lang: str) -> np.ndarray:
    """A neuron statistic [n_layers, d_mlp] of `lang`'s FLORES corpus in `store`."""
    from neuronoverlap.store import Store

    check_choice("stored_statistic", "statistic", statistic, CORPUS_STATISTICS, "corpus statistic")
    corpus = Store(store).corpus(lang)
    return corpus.mean_activation() if statistic == "mean" else corpus.activation_probability()


def band_probability(store, langs: Sequence[str] | None = None) -> np.ndarray:
    """The activation probability the null's bands are cut by: the mean over the store's corpora
    (or `langs`'), each neuron's share of FLORES tokens it fires on."""
    from neuronoverlap.store import Store

    reader = Store(store)
    langs = list(langs or reader.corpora())
    if not langs:
        raise InputError(f"{reader.path} has no corpus statistics to cut the null's bands by; record some")
    return np.mean([reader.corpus(lang).activation_probability() for lang in langs], axis=0)


def intervention_values(store, options: InterventionOptions, langs: Sequence[str]):
    """(values, factor) for `set_effect` of the options' intervention; mean and value average
    the stored statistic over the corpora of `options.of`, or of `langs`."""
    if options.kind == "zero":
        return None, None
    if options.kind == "scale":
        return None, float(options.factor)
    statistic = options.statistic if options.kind == "value" else "mean"
    sources = [options.of] if options.of else list(langs)
    return np.mean([stored_statistic(store, statistic, x) for x in sources], 0), None


def _effect_row(effect: SetEffect, **labels: Any) -> dict[str, Any]:
    """A JSON-ready row: effect, interval, per layer, the nulls' summaries, p and z."""
    null = np.asarray(effect.null_attribution)
    data = asdict(effect)
    for key in ("null_attribution", "options"):
        data.pop(key)
    return {
        **labels,
        **data,
        "interval": list(effect.interval),
        "layer_counts": {str(k): v for k, v in effect.layer_counts.items()},
        "per_layer": {str(k): v for k, v in effect.per_layer.items()},
        "per_layer_attribution": {str(k): v for k, v in effect.per_layer_attribution.items()},
        "null_attribution_summary": {
            "n": int(null.size),
            "mean": float(null.mean()),
            "sd": float(null.std(ddof=1)) if null.size > 1 else 0.0,
            "q05": float(np.quantile(null, 0.05)),
            "q95": float(np.quantile(null, 0.95)),
        },
    }


def _progress(enabled: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def lape_sets(store, langs: Sequence[str], **lape: Any) -> dict[str, Any]:
    """Each language's LAPE language-specific neurons from the store's FLORES corpora."""
    from neuronoverlap.sets.builders import language_active_sets
    from neuronoverlap.store import Store

    reader = Store(store)
    probabilities = {lang: reader.corpus(lang).activation_probability() for lang in langs}
    return language_active_sets(probabilities, rule="lape", **lape)


def intervention_perplexity(
    store: str | Path,
    langs: Sequence[str],
    model=None,
    *,
    options: InterventionOptions = InterventionOptions(),  # noqa: B008 (frozen)
    n_sentences: int = 100,
    split: str = "devtest",
    max_tokens: int = 128,
    data_dir=None,
    exact_null: str = "diagonal",
    cache_dir=None,
    progress: bool = True,
    save: bool = True,
) -> InterventionResult:
    """LAPE's test (module docstring) with `options` (what is done to each set, the null, the
    batch size); kept in `store` as results/intervention-perplexity-LANGS.

    `exact_null`: "diagonal" runs the exact random sets only where the set's own language is
    scored (the cells LAPE's claim is judged on; every other cell has the set's exact effect and
    the attribution null), "all" in every cell (6 times the forwards for 6 languages).
    `cache_dir`: a folder keeping every finished scoring (`interventions.cache`): rerun the same
    call after a kill and only the missing scorings run."""
    from neuronoverlap.interventions.metrics import perplexity_summary
    from neuronoverlap.interventions.scoring import sentence_texts
    from neuronoverlap.languages import get_language
    from neuronoverlap.pipeline.model import ModelSource
    from neuronoverlap.probes import flores_sentences

    _check_sizes("intervention_perplexity", n_sentences=n_sentences, max_tokens=max_tokens)
    check_choice("intervention_perplexity", "exact_null", exact_null, EXACT_NULLS, "exact null")
    langs = [get_language(x).code for x in langs]
    if len(langs) < 2 or len(set(langs)) != len(langs):
        raise InputError(f"LAPE's test needs at least two different languages, got {','.join(langs)}")
    kind, null, batch_size = options.kind, options.null, options.batch_size
    values, factor = intervention_values(store, options, langs)
    sets = lape_sets(store, langs)
    probability = band_probability(store, langs) if null.n_bands > 1 else None
    loaded = ModelSource.of(model).load(store)
    texts, data = {}, {}
    for lang in langs:
        sentences, params = flores_sentences(lang, n_sentences, split=split, data_dir=data_dir)
        texts[lang], data[lang] = sentence_texts(loaded, sentences, max_tokens=max_tokens), params
    from neuronoverlap.interventions.cache import RunCache
    from neuronoverlap.interventions.effects import cached_attribution, cached_scores

    cache = RunCache(cache_dir)
    nonempty = [name for name, neurons in sets.items() if len(neurons)]
    exact_cells = sum(1 for name in nonempty for lang in langs if exact_null == "all" or name == lang)
    bar = _progress(
        progress,
        2 * len(langs) + len(nonempty) * len(langs) + exact_cells * null.exact_sets,
        "intervene perplexity",
    )
    baseline, attribution = {}, {}
    for lang in langs:
        baseline[lang] = cached_scores(loaded, texts[lang], batch_size=batch_size, cache=cache)
        bar.update()
        attribution[lang] = cached_attribution(
            loaded, texts[lang], kind, values=values, factor=factor, batch_size=batch_size, cache=cache
        )
        bar.update()
    rows, skipped = [], []
    for name, neurons in sets.items():
        if len(neurons) == 0:
            skipped.append(name)
            continue
        for lang in langs:
            effect = set_effect(
                loaded,
                texts[lang],
                neurons.with_label(f"lape:{name}"),
                kind=kind,
                values=values,
                factor=factor,
                probability=probability,
                options=null,
                baseline=baseline[lang],
                attribution=attribution[lang],
                batch_size=batch_size,
                exact_per_layer=False,
                exact_null=exact_null == "all" or name == lang,
                cache=cache,
                progress=lambda message: (
                    bar.update() if "random set" in message or "exact" in message else None
                ),
            )
            rows.append(_effect_row(effect, set=name, lang=lang))
    bar.close()
    summary = perplexity_matrix(rows, [n for n in sets if n not in skipped], langs)
    summary["baseline"] = {
        lang: perplexity_summary(baseline[lang], confidence=null.confidence) for lang in langs
    }
    summary["empty_sets"] = skipped
    result = InterventionResult(
        "perplexity",
        "-".join(langs),
        kind,
        tuple(rows),
        summary,
        {
            "langs": langs,
            "n_sentences": n_sentences,
            "split": split,
            "max_tokens": max_tokens,
            "exact_null": exact_null,
            "band_source": "mean FLORES activation probability of the languages"
            if probability is not None
            else None,
            "sets": {name: {"rule": "lape", "n_neurons": len(s)} for name, s in sets.items()},
            "data": data,
            "model": loaded.fingerprint(),
        },
        options,
    )
    if save:
        save_result(store, result)
    return result


def perplexity_matrix(rows: list[dict], sets: list[str], langs: list[str]) -> dict[str, Any]:
    """The set x language matrices of NLL change and z, and whether each set's own language
    changes most (LAPE's dominant diagonal)."""
    cell = {(r["set"], r["lang"]): r for r in rows}
    effect = [[cell[(s, x)]["effect"] for x in langs] for s in sets]
    z = [[cell[(s, x)]["z_exact"] for x in langs] for s in sets]
    z_attribution = [[cell[(s, x)]["z_attribution"] for x in langs] for s in sets]
    own = {s: bool(np.argmax(effect[i]) == langs.index(s)) for i, s in enumerate(sets) if s in langs}
    exact = [v for r in rows for v in [r["effect"], *r["null_exact"]]]
    estimate = [v for r in rows for v in [r["attribution"], *r["null_exact_attribution"]]]
    return {
        "sets": sets,
        "langs": langs,
        "effect": effect,
        "z_exact": z,
        "z_attribution": z_attribution,
        "own_language_largest": own,
        "diagonal_share": float(np.mean(list(own.values()))) if own else float("nan"),
        "agreement_r": float(np.corrcoef(exact, estimate)[0, 1]) if len(exact) > 2 else float("nan"),
    }


def _bli_metrics(model, result, batch_size: int) -> dict[str, dict[str, np.ndarray]]:
    """Per condition and word: hit, best gold log-probability, answer in the target's script."""
    from neuronoverlap.evaluation.logprob import gold_logprobs
    from neuronoverlap.interventions.metrics import bli_items, script_flags

    tgt = result.params["tgt"]
    metrics = {}
    for name, items in bli_items(result).items():
        metrics[name] = {
            "p_at_1": items["hits"].astype(np.float64),
            "gold_logprob": gold_logprobs(
                model, items["prompts"], items["golds"], batch_size=batch_size, answer="{a}"
            ),  # the golds are written as the style's answer template renders them already
            "target_script": script_flags(items["answers"], tgt).astype(np.float64),
        }
    return metrics


def _changes(base: dict, under: dict, confidence: float, seed: int) -> dict[str, dict[str, Any]]:
    """Per condition and metric: baseline, under the intervention, and the paired change with its
    bootstrap interval over words."""
    out = {}
    for condition, metrics in base.items():
        out[condition] = {}
        for metric, before in metrics.items():
            diff = under[condition][metric] - before
            low, high = bootstrap_mean_interval(diff, confidence=confidence, seed=seed)
            out[condition][metric] = {
                "baseline": float(before.mean()),
                "intervened": float(under[condition][metric].mean()),
                "change": float(diff.mean()),
                "interval": [low, high],
            }
    return out


def intervention_bli(
    store: str | Path,
    pair: tuple[str, str],
    bridges: Sequence[str],
    model=None,
    *,
    options: InterventionOptions = BLI_INTERVENTION,
    n_words: int = 50,
    seed: int = 0,
    prompts=None,
    top_rate: float | None = None,
    steer: bool = False,
    steer_scale: float = 1.0,
    max_new_tokens: int = 16,
    data_dir=None,
    null_conditions: str = "own",
    cache_dir=None,
    progress: bool = True,
    save: bool = True,
) -> InterventionResult:
    """BridgeX's premise (module docstring) with `options` (what is done to each set, the null,
    the batch size); `seed`: the word sample and the intervals over words. Kept as
    results/intervention-bli-S-T.

    `null_conditions`: "own" runs each random set only on the conditions its named set is judged
    on (O(s,t): zero-shot; B(b; s,t): through b; the other conditions get the set's exact change
    without a null), "all" on every condition (about 3 times the generations with 3 bridges).
    `cache_dir`: a folder keeping every finished evaluation (`interventions.cache`)."""
    from neuronoverlap.bridge.loader import bridge_sets
    from neuronoverlap.evaluation.bli import BLIPrompts, evaluate_bli
    from neuronoverlap.interventions import continuation_texts, intervene
    from neuronoverlap.interventions.null import as_neuron_set, empirical_pvalue, random_sets, z_score
    from neuronoverlap.languages import get_language
    from neuronoverlap.pipeline.model import ModelSource
    from neuronoverlap.sets.builders import DEFAULT_TOP_RATE
    from neuronoverlap.store import Store

    _check_sizes("intervention_bli", n_words=n_words, max_new_tokens=max_new_tokens)
    check_finite("intervention_bli", "steer_scale", steer_scale)
    check_choice("intervention_bli", "null_conditions", null_conditions, NULL_CONDITIONS, "null conditions")
    src, tgt = (get_language(x).code for x in pair)
    bridges = [get_language(b).code for b in bridges]
    if not bridges:
        raise InputError("BridgeX's premise needs at least one candidate bridge (--bridges)")
    prompts = prompts or BLIPrompts()
    reader = Store(store)
    overlap, specific = bridge_sets(reader, src, tgt, bridges, top_rate or DEFAULT_TOP_RATE)
    kind, null, batch_size = options.kind, options.null, options.batch_size
    values, factor = intervention_values(store, options, [src, tgt])
    directions = {}
    if steer:
        source_mean = stored_statistic(store, "mean", src)
        directions = {b: steer_scale * (stored_statistic(store, "mean", b) - source_mean) for b in bridges}
    probability = None
    if null.n_bands > 1:  # the bands of the pair's own probe sets, pooled over both directions
        probability = (
            reader.probes(src, tgt).pooled_probability() + reader.probes(tgt, src).pooled_probability()
        ) / 2
    loaded = ModelSource.of(model).load(store)
    shape = (loaded.n_layers, loaded.d_mlp)

    from neuronoverlap.interventions.cache import RunCache, run_key
    from neuronoverlap.interventions.hooks import as_neuron_set as as_neuron_set_of

    cache = RunCache(cache_dir)

    def run(neurons=None, how=kind, with_values=values, with_factor=factor, through=None, zero_shot=True):
        """BLI through `through` (default: every bridge) under the intervention on `neurons`;
        `zero_shot` False leaves the zero-shot condition out."""
        through = list(bridges if through is None else through)

        def evaluate():
            return evaluate_bli(
                loaded,
                src,
                tgt,
                through,
                n=n_words,
                seed=seed,
                batch_size=batch_size,
                prompts=prompts,
                max_new_tokens=max_new_tokens,
                data_dir=data_dir,
                progress=False,
                n_resamples=1000,
                zero_shot=zero_shot,
            )

        if neurons is None:
            return evaluate()

        def compute():
            with intervene(loaded, neurons, how, values=with_values, factor=with_factor):
                metrics = _bli_metrics(loaded, evaluate(), batch_size)
            return {f"{c}|{m}": v for c, ms in metrics.items() for m, v in ms.items()}

        key = run_key(
            run="bli",
            model=loaded.fingerprint(),
            members=np.flatnonzero(as_neuron_set_of(shape, neurons).mask),
            how=how,
            values=with_values,
            factor=with_factor,
            pair=[src, tgt],
            through=through,
            **({} if zero_shot else {"zero_shot": False}),  # keys of runs with zero-shot unchanged
            n_words=n_words,
            seed=seed,
            prompts=asdict(prompts),
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            data_dir=str(data_dir),
        )
        flat = cache.arrays(key, compute)
        metrics: dict[str, dict[str, np.ndarray]] = {}
        for name, value in flat.items():
            condition, metric = name.split("|")
            metrics.setdefault(condition, {})[metric] = value
        return metrics

    named = {"O": overlap, **{f"B:{b}": specific[b] for b in bridges}}
    bar = _progress(
        progress, 1 + len(named) * (1 + null.exact_sets) + len(directions), f"intervene bli {src}-{tgt}"
    )

    def judged_on(name: str) -> list[str] | None:
        """The bridges a random set matched to `name` runs through (None: all)."""
        if null_conditions == "all":
            return None
        return [] if name == "O" else [name[2:]]

    base_result = run()
    base = _bli_metrics(loaded, base_result, batch_size)
    bar.update()
    from neuronoverlap.interventions.metrics import bli_items

    best_prompts, best_golds = _best_golds(loaded, bli_items(base_result)["zero-shot"], batch_size)
    gold_texts = continuation_texts(loaded, best_prompts, best_golds)  # the zero-shot gold's NLL
    zero_shot = base["zero-shot"]
    rows, skipped = [], []
    for name, neurons in named.items():
        if len(neurons) == 0:
            skipped.append(name)
            continue
        under = run(neurons)
        bar.update()
        changes = _changes(base, under, null.confidence, seed)
        through = judged_on(name)
        null_harm = {c: {m: [] for m in ("p_at_1", "gold_logprob")} for c in base}
        for row in random_sets(
            neurons, null.exact_sets, probability=probability, n_bands=null.n_bands, seed=null.seed
        ):
            # a B(b) null judged through b alone needs no zero-shot answers (a third of the work)
            random_run = run(as_neuron_set(row, shape), through=through, zero_shot=not through)
            bar.update()
            for c in random_run:
                for m in null_harm[c]:
                    null_harm[c][m].append(float(base[c][m].mean() - random_run[c][m].mean()))
        for c in base:
            judged = through is None or c == (f"bridge:{through[0]}" if through else "zero-shot")
            for m in null_harm[c]:
                harm = -changes[c][m]["change"]
                changes[c][m].update(
                    harm=harm,
                    null_harm=null_harm[c][m] if judged else [],
                    p=empirical_pvalue(harm, np.array(null_harm[c][m]), null.alternative) if judged else None,
                    z=z_score(harm, np.array(null_harm[c][m])) if judged else None,
                )
        # the zero-shot gold's NLL, exactly and by attribution patching against its own null;
        # per layer by attribution only, as in LAPE's test (exactly: one more scoring per layer)
        effect = set_effect(
            loaded,
            gold_texts,
            neurons.with_label(name),
            kind=kind,
            values=values,
            factor=factor,
            probability=probability,
            options=null,
            batch_size=batch_size,
            exact_per_layer=False,
            cache=cache,
        )
        premise = None
        if name.startswith("B:"):
            own = name[2:]
            others = [b for b in bridges if b != own]
            own_harm = changes[f"bridge:{own}"]["p_at_1"]["harm"]
            other_harm = [changes[f"bridge:{b}"]["p_at_1"]["harm"] for b in others]
            premise = {
                "own_bridge_harm": own_harm,
                "other_bridges_harm": float(np.mean(other_harm)) if other_harm else None,
                "own_minus_others": own_harm - float(np.mean(other_harm)) if other_harm else None,
            }
        rows.append(
            {
                "set": name,
                "n_neurons": len(neurons),
                "conditions": changes,
                "gold_nll_effect": _effect_row(effect, set=name),
                "premise": premise,
            }
        )
    steering = {}
    for b, direction in directions.items():
        steered = run(overlap, "add", direction, None, through=[])
        bar.update()
        steering[b] = _changes({"zero-shot": zero_shot}, steered, null.confidence, seed)["zero-shot"]
    bar.close()
    result = InterventionResult(
        "bli",
        f"{src}-{tgt}",
        kind,
        tuple(rows),
        {
            "baseline": {c: {m: float(v.mean()) for m, v in ms.items()} for c, ms in base.items()},
            "steering": steering,
            "empty_sets": skipped,
        },
        {
            "src": src,
            "tgt": tgt,
            "bridges": bridges,
            "n_words": n_words,
            "seed": seed,
            "prompts": asdict(prompts),
            "top_rate": top_rate or DEFAULT_TOP_RATE,
            "null_conditions": null_conditions,
            "gold_nll_per_layer": "attribution",
            "band_source": "pooled activation probability of the s<->t probe sets"
            if probability is not None
            else None,
            "steer_scale": steer_scale if steer else None,
            "sets": {name: len(s) for name, s in named.items()},
            "model": loaded.fingerprint(),
        },
        options,
    )
    if save:
        save_result(store, result)
    return result


def _best_golds(model, items: dict[str, Any], batch_size: int) -> tuple[list[str], list[str]]:
    """The zero-shot prompts and, per word, the gold the unmodified model finds likeliest."""
    from neuronoverlap.interventions import continuation_texts, score_texts

    owner = np.repeat(np.arange(len(items["prompts"])), [len(g) for g in items["golds"]])
    flat = [g for golds in items["golds"] for g in golds]
    nll = score_texts(
        model, continuation_texts(model, [items["prompts"][i] for i in owner], flat), batch_size=batch_size
    )
    best = []
    for i in range(len(items["prompts"])):
        mine = np.flatnonzero(owner == i)
        best.append(flat[mine[np.argmin(nll[mine])]])
    return list(items["prompts"]), best
