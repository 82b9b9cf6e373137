"""Analyses over languages: similarity, layer-wise overlap, the spectrum against taxonomy.

See docs/analyses.md for each measure, the layer thirds and the Mantel test.
"""

from neuronoverlap.analyses.layerwise import (
    THIRDS,
    LayerwiseOverlap,
    layer_thirds,
    layerwise_overlap,
    pairwise_overlaps,
    third_of_each_layer,
)
from neuronoverlap.analyses.similarity import (
    LanguageMatrix,
    activation_cka,
    activation_cosine,
    jaccard,
    linear_cka,
    overlap_counts,
)
from neuronoverlap.analyses.spectrum import (
    MantelResult,
    SpectrumResult,
    cluster_languages,
    cophenetic_correlation,
    language_spectrum,
    mantel_test,
    similarity_to_distance,
    taxonomy_distances,
)
from neuronoverlap.analyses.writer import SpectrumOutputs, write_spectrum_outputs

__all__ = [
    "THIRDS",
    "LanguageMatrix",
    "LayerwiseOverlap",
    "MantelResult",
    "SpectrumOutputs",
    "SpectrumResult",
    "activation_cka",
    "activation_cosine",
    "cluster_languages",
    "cophenetic_correlation",
    "jaccard",
    "language_spectrum",
    "layer_thirds",
    "layerwise_overlap",
    "linear_cka",
    "mantel_test",
    "overlap_counts",
    "pairwise_overlaps",
    "similarity_to_distance",
    "taxonomy_distances",
    "third_of_each_layer",
    "write_spectrum_outputs",
]
