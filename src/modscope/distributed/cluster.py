"""The Dask cluster a computation runs on: a given client, a scheduler address, or a LocalCluster sized to this
machine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from modscope.errors import ModscopeError

# a worker keeps this share of the machine's memory; the rest is for the client process and the OS
WORKER_MEMORY_SHARE = 0.8


def machine_cluster_kwargs() -> dict[str, Any]:
    """LocalCluster settings for this machine: one in-process worker with a thread per core and 80 % of the RAM.

    In-process (``processes=False``) starts in a fraction of a second, so a one-off ``engine="dask"`` call costs
    little more than the local engine; the kernels (float64 GEMMs, Zarr decompression, torch ``mm``) release the
    GIL, so the threads run in parallel. For memory isolation per worker, start your own
    ``LocalCluster(n_workers=..., processes=True)`` and pass its client.
    """
    import psutil

    cores = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    memory = int(psutil.virtual_memory().total * WORKER_MEMORY_SHARE)
    return {"n_workers": 1, "threads_per_worker": cores, "memory_limit": memory, "processes": False,
            "dashboard_address": None}


@contextlib.contextmanager
def dask_client(client: Any = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for the duration of a computation.

    Args:
        client: an existing ``distributed.Client`` (used as is, never closed here).
        scheduler: a scheduler address (``tcp://host:8786``) to connect to; closed on exit.

    With neither, the current default client is used if there is one (``distributed.get_client``), else a
    ``LocalCluster`` sized by ``machine_cluster_kwargs`` is started and shut down on exit.

    Yields:
        The client.
    """
    if client is None and not scheduler:
        client = current_client()
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            connected = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ModscopeError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
                                "`dask scheduler` or leave --scheduler out to use a local cluster") from None
        with connected:
            yield connected
        return
    with LocalCluster(**machine_cluster_kwargs()) as cluster, Client(cluster) as local:
        yield local


def current_client() -> Any:
    """The default ``distributed.Client`` of this process if it is still running, or None.

    A closed client can stay registered as the default (e.g. after a ``with Client(...)`` block elsewhere in the
    process); submitting to it fails with ``FutureCancelledError``, so only a running one is reused.
    """
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return None
    return client if getattr(client, "status", None) == "running" else None
