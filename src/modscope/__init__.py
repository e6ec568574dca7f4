"""modscope: find modules and information channels inside neural networks with linear algebra."""

from modscope.errors import ModscopeError
from modscope.models import Model, load_model

__version__ = "0.1.0"

__all__ = ["Model", "ModscopeError", "__version__", "load_model"]
