"""Neuron sets: the `NeuronSet` type, selection rules and the method's set builders.

See docs/sets.md for the definitions, defaults and the HDF5 layout of a saved set
(`neuronoverlap.store.neuron_sets`; sets are saved and loaded through the store).
"""

from neuronoverlap.sets.builders import (
    OVERLAP_DEFINITIONS,
    ProbeSamples,
    activation_probability,
    bridge_specific_from_corpus,
    bridge_specific_from_probes,
    language_active_sets,
    language_specific,
    mean_activation,
    overlap_from_corpus,
    overlap_from_directions,
    overlap_from_probes,
    overlap_set,
    pooled_scores,
    probe_active_set,
    sample_votes,
    select_neurons,
    selection_params,
)
from neuronoverlap.sets.core import DEFAULT_HOOK, NeuronSet, check_same_shape
from neuronoverlap.sets.pooling import WEIGHTING, WeightedMean, pooled_mean
from neuronoverlap.sets.selection import (
    DEFAULT_TOP_RATE,
    kth_smallest,
    lape_masks,
    threshold_mask,
    top_count,
    top_rate_mask,
)

__all__ = [
    "WEIGHTING",
    "WeightedMean",
    "pooled_mean",
    "DEFAULT_TOP_RATE",
    "DEFAULT_HOOK",
    "NeuronSet",
    "ProbeSamples",
    "activation_probability",
    "bridge_specific_from_corpus",
    "bridge_specific_from_probes",
    "check_same_shape",
    "kth_smallest",
    "lape_masks",
    "language_active_sets",
    "language_specific",
    "mean_activation",
    "OVERLAP_DEFINITIONS",
    "overlap_from_corpus",
    "overlap_from_directions",
    "overlap_from_probes",
    "overlap_set",
    "pooled_scores",
    "probe_active_set",
    "sample_votes",
    "select_neurons",
    "selection_params",
    "threshold_mask",
    "top_count",
    "top_rate_mask",
]
