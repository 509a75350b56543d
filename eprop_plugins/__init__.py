"""eprop-plugins: e-prop learning for Brian2, NEST (NESTML) and PyNN, validated against one NumPy reference."""

from .errors import BackendError
from .parameters import ParameterError
from .scenario import Population, Scenario, load

__version__ = "0.1.0"
__all__ = ["BackendError", "ParameterError", "Population", "Scenario", "load", "__version__"]
