"""Models: load HF causal LMs and random-init twins in one site vocabulary."""

from modscope.models.adapters import Adapter, LayerModules, adapter_for
from modscope.models.loading import EMBEDDED, OFFLINE_ALTERNATIVES, load_model
from modscope.models.model import Model
from modscope.models.sites import SITE_DOC, parse_site, run_with_sites, select_sites, site_shapes
from modscope.models.tiny import TINY_MODELS

__all__ = [
    "EMBEDDED", "OFFLINE_ALTERNATIVES", "SITE_DOC", "TINY_MODELS", "Adapter", "LayerModules", "Model",
    "adapter_for", "load_model", "parse_site", "run_with_sites", "select_sites", "site_shapes",
]
