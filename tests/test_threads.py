"""Torch's thread count: --threads, NEURONOVERLAP_THREADS, OMP_NUM_THREADS, else the allowed cores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from neuronoverlap import threads
from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.threads import THREADS_ENV, allowed_cores, set_threads, thread_count


@pytest.fixture
def no_thread_env(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads(), threads._applied
    yield monkeypatch
    torch.set_num_threads(before[0])
    threads._applied = before[1]


def test_the_default_is_the_cores_this_process_may_use(no_thread_env):
    no_thread_env.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5})
    assert allowed_cores() == 3
    got = thread_count()
    assert got.count == 3 and "3 cores this process may use" in got.source


def test_the_option_beats_the_variables_which_beat_the_cores(no_thread_env):
    no_thread_env.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    no_thread_env.setenv("OMP_NUM_THREADS", "2")
    assert thread_count() == threads.Threads(2, "OMP_NUM_THREADS")
    no_thread_env.setenv(THREADS_ENV, "3")
    assert thread_count() == threads.Threads(3, THREADS_ENV)
    assert thread_count(1) == threads.Threads(1, "--threads")


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5", " "])
def test_a_bad_thread_count_is_an_input_error(no_thread_env, bad):
    if bad.strip():
        no_thread_env.setenv(THREADS_ENV, bad)
        with pytest.raises(InputError, match=THREADS_ENV):
            thread_count()
    else:  # an empty variable is unset
        no_thread_env.setenv(THREADS_ENV, bad)
        assert thread_count().source != THREADS_ENV
    with pytest.raises(InputError, match="--threads"):
        thread_count(0)


def test_set_threads_sets_torch_and_load_model_keeps_it(no_thread_env):
    assert set_threads(1).count == 1 and torch.get_num_threads() == 1
    from neuronoverlap.models import load_model

    load_model("tiny-llama")
    assert torch.get_num_threads() == 1


def test_info_prints_the_count_and_the_option_sets_it(no_thread_env, capsys):
    assert main(["info", "--model", "tiny-llama", "--threads", "1", "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert "threads:        1 torch thread (--threads)" in out and torch.get_num_threads() == 1
    assert main(["info", "--model", "tiny-llama", "--threads", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--threads must be a whole number" in err


def test_a_process_narrowed_to_one_core_computes_with_one_thread():
    """A real process whose CPU affinity is one core (as `taskset -c 0` or a scheduler leaves it):
    torch's own default would count every core of the machine."""
    core = min(os.sched_getaffinity(0))
    code = (
        f"import os; os.sched_setaffinity(0, {{{core}}}); import torch; "
        "from neuronoverlap.cli import main; "
        "assert main(['info', '--model', 'tiny-llama', '--max-new-tokens', '2']) == 0; "
        "print('torch', torch.get_num_threads())"
    )
    unset = (THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 torch thread (the 1 core this process may use)" in out.stdout and "torch 1" in out.stdout
