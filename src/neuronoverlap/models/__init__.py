"""Models: loading (embedded, local checkpoint, tiny) and the one model interface."""

from neuronoverlap.models.generation import (
    Generation,
    StopRule,
    generate_greedy,
    next_token_log_probs,
)
from neuronoverlap.models.interface import ActivationConsumer, Batch, NeuronModel
from neuronoverlap.models.loading import load_model, load_tiny

__all__ = [
    "ActivationConsumer",
    "Batch",
    "Generation",
    "NeuronModel",
    "StopRule",
    "generate_greedy",
    "next_token_log_probs",
    "load_model",
    "load_tiny",
]
