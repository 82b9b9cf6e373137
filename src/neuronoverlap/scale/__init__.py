"""Recording a work plan (`store/plan.py`) in shards: one shard in this process (`--shard I/N`,
e.g. a Slurm array task) or a pool of Ray actors (`--executor ray`), joined by `merge`."""

from neuronoverlap.scale.units import Job, record_shard

__all__ = ["Job", "record_shard"]
