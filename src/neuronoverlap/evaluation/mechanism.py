"""The repaired score's two pre-registered tests (issue 26; docs/evaluation.md, "Pre-registered:
the repaired score's two tests"). Written before the full-size study ran; run on it by
`fullsize_analysis --phase tests` (docs/findings.md section 4 reads the results).

1. `mechanism_tau`: with English (or any `drop`) removed from the candidates, the mean over pairs
   of Kendall's tau-b between a score (the repaired HSIC effect, or the target share) and the
   bridges' accuracy, tested one-sided (H1: tau > 0) by permuting each pair's scores
   (`study.pooled_kendall_tau`).
2. `competence_test`: a word-level mixed logistic model
   hit ~ competence(b) + hsic(b) + (1 | pair) + (1 | word), fitted by statsmodels'
   `BinomialBayesMixedGLM` (variational Bayes), and a pair-level bootstrap of the hsic
   coefficient (pairs resampled with replacement, each drawn pair's words and rows kept whole;
   a pair drawn twice enters as two pairs). HSIC adds to competence when the bootstrap's
   one-sided lower bound (the `alpha` quantile) is above 0. Every fit starts where statsmodels
   starts it (means 0, log standard deviations -0.5 + 0.1 N(0, 1)), but from a seeded generator
   (`fit_start`), so a rerun, a resumed run and a run in N processes give the same draws bit
   for bit (statsmodels' own default draws that start from fresh entropy: fits then differ in
   the 4th decimal, the optimiser's tolerance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.study import PairData, TauTest, pooled_kendall_tau

#: The one-sided level both decisions are taken at.
ALPHA = 0.05


def mechanism_tau(
    pairs: Sequence[PairData],
    scores: Mapping[str, Mapping[str, float]],
    *,
    drop: Sequence[str] = ("en",),
    n_permutations: int = 9999,
    seed: int = 0,
) -> TauTest:
    """Mean Kendall tau-b over pairs between `scores[pair][bridge]` and the bridges' accuracy
    (mean hit over words), the bridges in `drop` left out; one-sided permutation p."""
    kept_scores, kept_accuracy = {}, {}
    for pair in pairs:
        if pair.name not in scores:
            raise InputError(f"no scores for {pair.name}")
        keep = [i for i, b in enumerate(pair.bridges) if b not in drop]
        if len(keep) < 2:
            continue
        kept_scores[pair.name] = [float(scores[pair.name][pair.bridges[i]]) for i in keep]
        kept_accuracy[pair.name] = [float(pair.hits[i].mean()) for i in keep]
    if not kept_scores:
        raise InputError("no pair keeps two bridges once the dropped ones are left out")
    return pooled_kendall_tau(kept_scores, kept_accuracy, n_permutations=n_permutations, seed=seed)


def _standardised(values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    sd = values.std()
    return (values - values.mean()) / sd if sd > 0 else values * 0.0


def word_rows(
    pairs: Sequence[PairData],
    competence: Mapping[str, Mapping[str, float]],
    hsic: Mapping[str, Mapping[str, float]],
    *,
    n_seeds: int = 1,
):
    """The model's rows (a pandas DataFrame): one per pair, word, bridge and example seed, hit
    0/1 (a pair's hits are seed means: k of n_seeds seeds hit); competence and hsic standardised
    over each pair's bridges (mean 0, sd 1), so the coefficients compare bridges within pairs."""
    import pandas as pd

    frames = []
    for pair in pairs:
        hits = np.rint(pair.hits * n_seeds).astype(int)  # [bridge, word] seeds that hit
        if np.abs(hits - pair.hits * n_seeds).max() > 1e-6:
            raise InputError(f"{pair.name}: hits are not means over {n_seeds} seeds")
        comp = _standardised([competence[pair.name][b] for b in pair.bridges])
        score = _standardised([hsic[pair.name][b] for b in pair.bridges])
        n_bridges, n_words = hits.shape
        bridge, word, seed = np.meshgrid(
            np.arange(n_bridges), np.arange(n_words), np.arange(n_seeds), indexing="ij"
        )
        frames.append(
            pd.DataFrame(
                {
                    "pair": pair.name,
                    "word": [f"{pair.name}:{w}" for w in word.ravel()],
                    "bridge": np.asarray(pair.bridges)[bridge.ravel()],
                    "hit": (seed < hits[:, :, None]).ravel().astype(int),
                    "competence": comp[bridge.ravel()],
                    "hsic": score[bridge.ravel()],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


#: The optimisers `fit_mixed_logistic` accepts (scipy's names, passed to `fit_vb`).
FIT_METHODS = ("BFGS", "L-BFGS-B")


def mixed_design(rows):
    """The model's matrices, built sparse: (endog, exog [1, competence, hsic], exog_vc [pair
    dummies | word dummies], ident, levels), the same design `from_formula` builds densely (a
    dense word design of a full-size study is rows x words: 117,000 x 9,000 doubles, 8 GB);
    `levels` names exog_vc's columns ('pair:de-fr', 'word:de-fr:12')."""
    import pandas as pd
    from scipy import sparse

    n = len(rows)
    exog = np.column_stack([np.ones(n), rows["competence"].to_numpy(float), rows["hsic"].to_numpy(float)])
    blocks, ident, levels = [], [], []
    for k, column in enumerate(("pair", "word")):
        codes, names = pd.factorize(rows[column], sort=True)
        blocks.append(sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, len(names))))
        ident += [k] * len(names)
        levels += [f"{column}:{name}" for name in names]
    return rows["hit"].to_numpy(float), exog, sparse.hstack(blocks).tocsr(), np.array(ident), levels


#: The fixed effects, in the design's column order.
FIXED = ("Intercept", "competence", "hsic")

#: The variance components (log standard deviations of the random effects), in `fit_vb`'s order.
COMPONENTS = ("pair", "word")


def _original(level: str) -> str:
    """The level a resampled one was copied from: 'pair:de-fr#3' -> 'pair:de-fr' (`_resample`)."""
    return level.rsplit("#", 1)[0]


@dataclass(frozen=True)
class Posterior:
    """A fit's variational posterior: means and standard deviations of the fixed effects
    (FIXED), the variance components (COMPONENTS) and every random effect, named by `levels`."""

    mean: np.ndarray
    sd: np.ndarray
    levels: tuple[str, ...]

    @property
    def fixed(self) -> dict[str, float]:
        return dict(zip(FIXED, map(float, self.mean[: len(FIXED)]), strict=True))

    def start_for(self, levels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`fit_vb`'s (mean, sd) start for a fit on `levels`: the fixed effects and components as
        here, each level (a resample's 'word:de-fr:12#3') at its original's posterior."""
        head = len(FIXED) + len(COMPONENTS)
        index = {name: head + i for i, name in enumerate(self.levels)}
        missing = [level for level in levels if _original(level) not in index]
        if missing:
            raise InputError(f"no level {_original(missing[0])!r} in the posterior to start from")
        take = np.r_[np.arange(head), [index[_original(level)] for level in levels]].astype(int)
        return self.mean[take], self.sd[take]

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "sd": self.sd.tolist(), "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, d: Mapping) -> Posterior:
        return cls(np.asarray(d["mean"], float), np.asarray(d["sd"], float), tuple(d["levels"]))


#: Where a bootstrap fit starts (kept in the draws file: draws of another rule are not mixed in).
#: "seeded": statsmodels' own random start, from a seeded generator (`fit_start`; the
#: pre-registered run's); "full": the fit on all rows, each resampled pair and word at its
#: original's posterior (`Posterior.start_for`), which converges in fewer steps
#: (bench/bench_mixed_bootstrap.py) to the same optimum within the optimiser's tolerance.
START_RULES = {
    "seeded": "statsmodels' start from numpy default_rng(start)",
    "full": "the full fit's posterior, each resampled pair and word at its original's",
}
START_RULE = START_RULES["seeded"]


def fit_start(seed: int, draw: int | None) -> list[int]:
    """The seed of one fit's starting point: [seed] for the fit on all rows, [seed, i + 1] for
    bootstrap draw i (independent streams, the same in every run)."""
    return [seed] if draw is None else [seed, draw + 1]


def fit_posterior(
    rows, *, fit_method: str = "BFGS", start: Sequence[int] = (0,), warm: Posterior | None = None
) -> Posterior:
    """The variational posterior of hit ~ competence + hsic + (1|pair) + (1|word)
    (`BinomialBayesMixedGLM.fit_vb`, its default priors; the design built sparse, `mixed_design`).
    `fit_method`: scipy's optimiser of the variational objective; "L-BFGS-B" keeps no dense
    inverse Hessian (BFGS's is (2 x random effects)^2 doubles: 2.6 GB at 9,000 words).
    `start`: the seed of statsmodels' random starting point (`fit_start`); `warm`: start from
    this posterior instead (`Posterior.start_for`)."""
    import warnings

    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    if fit_method not in FIT_METHODS:
        raise InputError(f"unknown fit method {fit_method!r}; use one of {', '.join(FIT_METHODS)}")
    endog, exog, exog_vc, ident, levels = mixed_design(rows)
    if endog.min() == endog.max():
        raise InputError(f"every hit is {int(endog[0])}: the mixed logistic model is undefined")
    model = BinomialBayesMixedGLM(
        endog, exog, exog_vc, ident, fe_p=2, vcp_p=1, vcp_names=list(COMPONENTS), fep_names=list(FIXED)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if warm is None:
            result = model.fit_vb(fit_method=fit_method, rng=np.random.default_rng(list(start)))
        else:
            mean, sd = warm.start_for(levels)
            result = model.fit_vb(mean=mean, sd=sd, fit_method=fit_method)
    return Posterior(
        np.concatenate([result.fe_mean, result.vcp_mean, result.vc_mean]),
        np.concatenate([result.fe_sd, result.vcp_sd, result.vc_sd]),
        tuple(levels),
    )


def fit_mixed_logistic(rows, *, fit_method: str = "BFGS", start: Sequence[int] = (0,)) -> dict[str, float]:
    """Posterior means of the fixed effects (`fit_posterior`, from statsmodels' seeded start)."""
    return fit_posterior(rows, fit_method=fit_method, start=start).fixed


@dataclass(frozen=True)
class CompetenceTest:
    """The hsic coefficient (log-odds per within-pair sd of the score, competence held fixed),
    its pair-bootstrap distribution's one-sided lower bound and two-sided interval, and the
    decision `adds` (lower bound > 0)."""

    coefficient: float
    competence: float
    lower: float
    interval: tuple[float, float]
    n_bootstrap: int
    n_pairs: int
    alpha: float
    draws: tuple[float, ...] = ()  # the bootstrap's hsic coefficients

    @property
    def adds(self) -> bool:
        return self.lower > 0


def _resample(groups, chosen):
    """One pair-bootstrap data set: the chosen pairs' rows, a pair drawn twice entering twice."""
    import pandas as pd

    parts = []
    for k, name in enumerate(chosen):
        part = groups[name].copy()
        part["pair"] = f"{name}#{k}"
        part["word"] = part["word"] + f"#{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _hsic_of(frame, fit_method: str, start: Sequence[int], warm: Posterior | None) -> float:
    return fit_posterior(frame, fit_method=fit_method, start=start, warm=warm).fixed["hsic"]


def competence_test(
    rows,
    *,
    n_bootstrap: int = 200,
    alpha: float = ALPHA,
    seed: int = 0,
    fit_method: str = "BFGS",
    draws_path=None,
    jobs: int = 1,
    start: str = "seeded",
    progress: bool = False,
) -> CompetenceTest:
    """The model on `rows` (`word_rows`) and its pair-level bootstrap. `draws_path`: a JSON file
    keeping the coefficients drawn so far (a rerun continues where it stopped: the resamples
    are drawn from `seed` in order and every fit starts from the same point, so the draws are
    those of an uninterrupted run, bit for bit). `jobs`: processes fitting resamples at once
    (the resamples, their starts and so their draws do not change). `start`: where each
    resample's fit starts (START_RULES: "seeded", statsmodels' seeded random start; "full",
    the full fit's posterior: fewer optimiser steps, the same optimum within its tolerance)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context
    from pathlib import Path

    from tqdm.auto import tqdm

    from neuronoverlap.store.journal import atomic_write_json, read_json

    if n_bootstrap < 2:
        raise InputError(f"n_bootstrap must be at least 2, got {n_bootstrap}")
    if jobs < 1:
        raise InputError(f"jobs must be at least 1, got {jobs}")
    if start not in START_RULES:
        raise InputError(f"unknown bootstrap start {start!r}; use one of {', '.join(START_RULES)}")
    names = list(dict.fromkeys(rows["pair"]))
    if len(names) < 2:
        raise InputError("the pair-level bootstrap needs at least 2 pairs")
    saved: dict = {}
    if draws_path is not None and Path(draws_path).is_file():
        saved = read_json(Path(draws_path), "bootstrap draws file")
    identity = {"seed": seed, "fit_method": fit_method, "pairs": names, "start": START_RULES[start]}
    if any(saved.get(k) != v for k, v in identity.items()):
        saved = {**identity, "full": None, "draws": {}}

    def keep() -> None:  # whole or not at all: a kill mid-write keeps the draws made before
        if draws_path is not None:
            atomic_write_json(Path(draws_path), saved)

    if saved["full"] is None or (start == "full" and "full_posterior" not in saved):
        posterior = fit_posterior(rows, fit_method=fit_method, start=fit_start(seed, None))
        saved["full"] = posterior.fixed
        if start == "full":  # kept: a resumed run starts its fits where the first one did
            saved["full_posterior"] = posterior.to_dict()
        keep()
    full = saved["full"]
    warm = Posterior.from_dict(saved["full_posterior"]) if start == "full" else None
    groups = {name: frame for name, frame in rows.groupby("pair", sort=False)}
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(names, size=len(names)) for _ in range(n_bootstrap)]
    draws = {int(i): float(v) for i, v in saved["draws"].items() if int(i) < n_bootstrap}
    todo = [i for i in range(n_bootstrap) if i not in draws]
    bar = tqdm(total=n_bootstrap, initial=len(draws), desc="pair bootstrap", disable=not progress)
    if jobs == 1:
        for i in todo:
            frame = _resample(groups, chosen[i])
            draws[i] = _hsic_of(frame, fit_method, fit_start(seed, i), warm)
            saved["draws"] = draws
            keep()
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {
                pool.submit(_hsic_of, _resample(groups, chosen[i]), fit_method, fit_start(seed, i), warm): i
                for i in todo
            }
            for future in as_completed(futures):
                draws[futures[future]] = future.result()
                saved["draws"] = draws
                keep()
                bar.update(1)
    bar.close()
    values = np.asarray([draws[i] for i in range(n_bootstrap)])
    return CompetenceTest(
        coefficient=full["hsic"],
        competence=full["competence"],
        lower=float(np.quantile(values, alpha)),
        interval=(float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))),
        n_bootstrap=n_bootstrap,
        n_pairs=len(names),
        alpha=alpha,
        draws=tuple(float(v) for v in values),
    )
