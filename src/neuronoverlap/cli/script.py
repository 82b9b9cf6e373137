"""The one entry rule of the `python -m neuronoverlap....` scripts (the study, its analysis, the
decision rules), as the `neuronoverlap` command applies it: a user's mistake (`InputError`) is
one line on stderr and exit code 2, an interrupt says how to resume (130), no traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def script_main(run: Callable[[], object]) -> int:
    """`run()`, then 0; an `InputError` or an interrupt as the command line reports them."""
    from neuronoverlap.errors import InputError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        run()
    except InputError as exc:
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"neuronoverlap: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neuronoverlap: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
