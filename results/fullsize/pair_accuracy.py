"""p@1 per condition of finished pairs of a stage of the rerun, read from a copy of its generation
cache (the running stage is never touched), to set beside the first run's table in findings §4.

usage, for either stage with stage 2's source (5e1254c: its `study_config` is both stages'
protocol, and its tests check that stage 1's is unchanged; 0badbb9 has no `study_config`):
  PYTHONPATH=$WORK/src-stage2/src OMP_NUM_THREADS=1 .venv/bin/python results/fullsize/pair_accuracy.py \\
      $WORK/out/fullsize/study-stage2 2 es-de,fr-de      (stage 1: $WORK/out/fullsize/study 1 de-es)
A pair whose answers are not all cached would be generated in the copy (slow, and not the run's):
name only pairs whose source language has finished its three example seeds.
"""

import shutil
import sys
import tempfile

from neuronoverlap.evaluation import fullsize
from neuronoverlap.evaluation.results import ZERO_SHOT, bridge_condition
from neuronoverlap.evaluation.validation import run_study
from neuronoverlap.pipeline.model import ModelSource

folder, stage, names = sys.argv[1], sys.argv[2], sys.argv[3]
pairs = [tuple(name.split("-")) for name in names.split(",")]
config = fullsize.study_config(fullsize.parser().parse_args(["--stage", stage]))
model = ModelSource("embedded").load()
with tempfile.TemporaryDirectory() as tmp:
    copy = shutil.copytree(folder, f"{tmp}/study")
    runs = run_study(model, pairs, list(fullsize.CANDIDATES), copy, config, progress=False)
for name, run in runs.items():
    cells = [f"zero-shot {run.accuracy(ZERO_SHOT):.3f}"]
    cells += [f"{b} {run.accuracy(bridge_condition(b)):.3f}" for b in run.bridges]
    print(name, " | ".join(cells), flush=True)
