"""The dask engine of `modscope mi` / `modscope spectrum` gives the local engine's numbers on the same stores."""

import numpy as np
import pytest

from modscope import ModscopeError, load_model
from modscope.capture import capture
from modscope.corpus import from_texts
from modscope.stats.model_mi import mi_of_stores
from modscope.stats.model_spectra import spectra_of_stores

TEXTS = from_texts([" ".join(f"token{(i * 13 + j) % 97}" for j in range(120)) for i in range(6)])


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    sites = ["resid_post.0", "resid_post.1"]
    model = capture(load_model("tiny-gpt2"), TEXTS, sites, out=root / "m", progress=False)
    twin = capture(load_model("random:tiny-gpt2"), TEXTS, sites, out=root / "t", progress=False)
    return model, twin, sites


def test_dask_mi_equals_local_mi(stores):
    model, twin, sites = stores
    local = mi_of_stores(model, twin, sites, curve_points=0)
    dask = mi_of_stores(model, twin, sites, curve_points=0, engine="dask")
    for a, b in zip(local.results, dask.results):
        assert b.mi == pytest.approx(a.mi, rel=1e-10) and b.z == pytest.approx(a.z, rel=1e-10)


def test_dask_spectra_equal_local_spectra(stores):
    model, _, sites = stores
    local = spectra_of_stores(model, None, sites)
    dask = spectra_of_stores(model, None, sites, engine="dask")
    for a, b in zip(local.trained, dask.trained):
        np.testing.assert_allclose(b.eigenvalues, a.eigenvalues, rtol=1e-10, atol=1e-12 * a.eigenvalues[0])


def test_dask_mi_refuses_curves_that_need_rows_in_memory(stores):
    model, twin, sites = stores
    with pytest.raises(ModscopeError, match="--curve-points 0"):
        mi_of_stores(model, twin, sites, curve_points=8, engine="dask")
