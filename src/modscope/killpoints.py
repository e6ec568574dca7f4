"""Test hook: SIGKILL this process at a named point between two writes, to test crash safety for real.

Set ``MODSCOPE_TEST_KILL_AT=NAME:N`` to kill the process the N-th time (1-based) it reaches ``kill_point(NAME)``.
Unset (always, outside the crash tests) it costs a dictionary lookup. The points are:

- ``grads-after-rows``: a gradient chunk is in Zarr, its training state and manifest are not;
- ``grads-after-state``: the chunk's training state is saved too, the manifest (the commit) is not;
- ``grads-after-manifest``: committed, the previous state file not yet deleted;
- ``capture-after-rows``: a capture chunk is in Zarr, the manifest that counts it is not.
"""

from __future__ import annotations

import os
import signal

ENV = "MODSCOPE_TEST_KILL_AT"
_seen: dict[str, int] = {}


def kill_point(name: str) -> None:
    """SIGKILL this process if ``MODSCOPE_TEST_KILL_AT`` names this point and its count is reached."""
    target, _, count = os.environ.get(ENV, "").partition(":")
    if target != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == int(count or 1):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
