"""A small two-worker Dask cluster per test module (torn down after it, so it never leaks into other packages)."""

from __future__ import annotations

import dask
import pytest

WORKER_LIMIT = 4 << 20  # bytes per worker: every test store is at least 3x this


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # in-process workers (processes=False) start in milliseconds; their memory limit is then nominal, so the
    # process-wide pause/spill/terminate thresholds are switched off and the tests check the per-task bytes instead
    with dask.config.set({"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
                          "distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": False}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, memory_limit=WORKER_LIMIT,
                          dashboard_address=None) as cluster, Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def worker_limit(client) -> int:
    """The memory limit of each worker in bytes, as the scheduler reports it."""
    limits = {w["memory_limit"] for w in client.scheduler_info()["workers"].values()}
    assert limits == {WORKER_LIMIT}
    return WORKER_LIMIT
