"""What truly needs Dask: the cluster a computation runs on (``dask_client``, ``machine_cluster_kwargs``).

The statistics themselves take ``engine="local"|"dask"`` where they live (``modscope.stats.covariance``,
``modscope.geometry.cosine_histogram``, ``modscope.training.compute_gram`` ...), all through ``modscope.engine``;
sharded capture is ``modscope.capture.sharded``. The old ``modscope.distributed.<statistic>`` names still resolve,
with a DeprecationWarning, for one release.
"""

import importlib
import warnings

from modscope.distributed.cluster import current_client, dask_client, machine_cluster_kwargs

__all__ = ["current_client", "dask_client", "machine_cluster_kwargs"]

_MOVED = {  # old name -> its home since the one-engine release
    "covariance": "modscope.stats.covariance", "gaussian_mi": "modscope.stats.mi",
    "covariance_spectrum": "modscope.stats.spectra:spectrum", "cosine_histogram": "modscope.geometry.histogram",
    "gradient_gram": "modscope.training.gram:compute_gram", "gradient_svd": "modscope.training.spectrum",
    "OutOfCoreSVD": "modscope.training.spectrum", "map_reduce": "modscope.engine", "reduce_tasks": "modscope.engine",
    "chunk_spans": "modscope.engine", "ENGINES": "modscope.engine",
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module 'modscope.distributed' has no attribute '{name}'")
    module, _, attr = _MOVED[name].partition(":")
    warnings.warn(f"modscope.distributed.{name} moved to {module}.{attr or name}; import it from there",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), attr or name)
