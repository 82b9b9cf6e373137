"""One accumulator protocol for the streaming statistics (consume, end_batch, result,
state_dict / load_state_dict), and fire counts that are integers from the hook to the store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronoverlap.analyses.sentences import SentenceFireCounts
from neuronoverlap.errors import InputError
from neuronoverlap.probes.stats import CorpusStats, ProbeBatchStats, StreamingStatistic
from neuronoverlap.store import counts

N_LAYERS, D_MLP = 3, 7


def batches(seed: int, n: int = 4, batch: int = 3, pos: int = 5):
    """Synthetic forward passes: per layer an activation [batch, pos, neuron] and a count mask."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        acts = [torch.from_numpy(rng.normal(size=(batch, pos, D_MLP))) for _ in range(N_LAYERS)]
        mask = torch.from_numpy(rng.random((batch, pos)) < 0.7)
        yield acts, mask


def feed(stat, passes) -> None:
    for acts, mask in passes:
        for layer, act in enumerate(acts):
            stat.consume(layer, act, mask)
        stat.end_batch(acts[0].shape[0])


def test_every_statistic_follows_the_protocol():
    for stat in (
        ProbeBatchStats(3, N_LAYERS, D_MLP),
        CorpusStats(N_LAYERS, D_MLP),
        SentenceFireCounts(12, N_LAYERS, D_MLP),
    ):
        assert isinstance(stat, StreamingStatistic), type(stat).__name__


def test_probe_fire_counts_are_the_integer_counts():
    stats = ProbeBatchStats(3, N_LAYERS, D_MLP)
    passes = list(batches(1))  # generation: one batch of samples, several forward passes
    for acts, mask in passes:
        for layer, act in enumerate(acts):
            stats.consume(layer, act, mask)
    stats.end_batch(3)
    brute = sum(
        np.stack([((a > 0) & m[..., None]).sum(dim=1).numpy() for a in acts], axis=1) for acts, m in passes
    )
    fires = stats.fires()
    assert fires.dtype == counts.FIRES_DTYPE and np.array_equal(fires, brute)
    mean, prob, tokens = stats.result()
    assert np.array_equal(prob, counts.probability(fires, tokens))
    assert np.array_equal(counts.fires_from_probability(prob, tokens, "test"), fires)


@pytest.mark.parametrize(
    "make", [lambda: CorpusStats(N_LAYERS, D_MLP), lambda: SentenceFireCounts(12, N_LAYERS, D_MLP)]
)
def test_a_tally_saved_halfway_and_resumed_equals_one_run(make):
    passes = list(batches(7))
    whole = make()
    feed(whole, passes)
    first = make()
    feed(first, passes[:2])
    state = {k: np.array(v) for k, v in first.state_dict().items()}  # as saved to disk
    resumed = make()
    resumed.load_state_dict(state)
    feed(resumed, passes[2:])
    for a, b in zip(whole.result(), resumed.result(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_probe_state_round_trips():
    stats = ProbeBatchStats(3, N_LAYERS, D_MLP)
    feed(stats, list(batches(3, n=1)))
    again = ProbeBatchStats(3, N_LAYERS, D_MLP)
    again.load_state_dict(stats.state_dict())
    assert np.array_equal(again.fires(), stats.fires())
    for a, b in zip(again.result(), stats.result(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_journal_blocks_hold_integer_fires_and_old_ones_still_read():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 40, size=5)
    fires = (rng.random((5, N_LAYERS, D_MLP)) * tokens[:, None, None]).astype(np.uint16)
    assert np.array_equal(counts.block_fires({"fires": fires, "tokens": tokens}, "block"), fires)
    old = {"prob": counts.probability(fires, tokens), "tokens": tokens}  # a journal of before
    assert np.array_equal(counts.block_fires(old, "block"), fires)
    with pytest.raises(InputError, match="not integers"):
        counts.block_fires({"fires": fires.astype(np.float32), "tokens": tokens}, "block")
    with pytest.raises(InputError, match="damaged"):
        counts.block_fires({"tokens": tokens}, "block")


def test_recording_journals_integer_fires(tiny_llama, tmp_path, monkeypatch):
    from neuronoverlap.options import ProbeOptions
    from neuronoverlap.pipeline import record_probes
    from neuronoverlap.store import Store
    from neuronoverlap.store.journal import Journal

    journaled = []
    real = Journal.add_block

    def spy(self, start, **arrays):
        journaled.append(arrays)
        real(self, start, **arrays)

    monkeypatch.setattr(Journal, "add_block", spy)
    path = tmp_path / "run.h5"
    record_probes(
        path, [("de", "fr")], tiny_llama, ProbeOptions(n_samples=3, max_new_tokens=3), progress=False
    )
    assert journaled and all("prob" not in a and a["fires"].dtype == counts.FIRES_DTYPE for a in journaled)
    view = Store(path).probes("de", "fr")
    stored = np.concatenate([a["fires"] for a in journaled[: len(journaled) // 2]])
    with view.store._file() as f:
        assert np.array_equal(f[view.key]["fires"][()], stored)
