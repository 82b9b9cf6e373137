"""Bridge predictors: rules that rank the candidate bridges of a pair from data the toolkit
records or ships, never from the pair's evaluation results. Each returns, per rule name, the
scores of the bridges (higher: better), ready for `evaluation.choice.judge`.

- `uriel`: URIEL distances to the target from lang2vec's shipped files (`uriel.py`).
"""

from neuronoverlap.predictors.uriel import uriel_distance, uriel_scores

__all__ = ["uriel_distance", "uriel_scores"]
