"""Single neurons as interpretability researchers query them: top-activating contexts in every
language (`contexts`), whether they agree across parallel sentences (`agreement`), cards to
browse and export (`cards`)."""

from neuronoverlap.neurons.contexts import Context, NeuronView, context_sources, contexts_frame, top_contexts

__all__ = ["Context", "NeuronView", "context_sources", "contexts_frame", "top_contexts"]
