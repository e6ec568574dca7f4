"""Beyond one machine: the streaming statistics as map-reduces over Zarr chunks, here or on a Dask cluster.

Public API (``engine="local"|"dask"``, ``client=`` a ``distributed.Client``, ``scheduler=`` an address; with
``dask`` and neither, a LocalCluster sized to the machine):

- ``map_reduce(sources, kernel, merge)``: the generic reduction over row (or column) chunks.
- ``covariance``, ``gaussian_mi``, ``covariance_spectrum``: ``modscope.stats`` over Zarr stores.
- ``gradient_gram``, ``gradient_svd`` -> ``OutOfCoreSVD``: gradient Gram / out-of-core SVD with error bounds.
- ``cosine_histogram``: the all-pairs cosine histogram, one task per block pair.
- ``dask_client``: the client context used by all of them.
Sharded capture lives in ``modscope.capture.sharded``.
"""

from modscope.distributed.engine import ENGINES, dask_client, machine_cluster_kwargs
from modscope.distributed.gradients import OutOfCoreSVD, gradient_gram, gradient_svd
from modscope.distributed.histogram import cosine_histogram
from modscope.distributed.mapreduce import chunk_spans, map_reduce, reduce_tasks
from modscope.distributed.statistics import covariance, covariance_spectrum, gaussian_mi, merge_covariances

__all__ = ["ENGINES", "OutOfCoreSVD", "chunk_spans", "cosine_histogram", "covariance", "covariance_spectrum",
           "dask_client", "gaussian_mi", "gradient_gram", "gradient_svd", "machine_cluster_kwargs", "map_reduce",
           "merge_covariances", "reduce_tasks"]
