"""E-prop for PyNN: standard cell and synapse types, and the glue that runs them on pyNN.nest and pyNN.brian2.

Usage::

    import pyNN.nest as sim            # or: import pyNN.brian2 as sim
    from pynn_ext import EpropIF, EpropReadout, EpropSynapse, FeedbackSynapse, Adam

The types (:mod:`pynn_ext.standardmodels`) are plain PyNN and import no simulator.  The glue module of
a simulator (:data:`GLUE`) is imported as soon as both this package and that PyNN simulator module are
imported, in either order, so that ``sim.Population`` and ``sim.Projection`` accept the e-prop types
without anything else to do.  See docs/pynn.rst.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from .standardmodels import (
    Adam,
    EpropIF,
    EpropIFAdaptive,
    EpropIFPscDelta,
    EpropIFPscDeltaAdaptive,
    EpropOptimizer,
    EpropReadout,
    EpropSynapse,
    FeedbackSynapse,
    GradientDescent,
    UnknownParameterError,
    note_setup,
)

__all__ = [
    "Adam",
    "EpropIF",
    "EpropIFAdaptive",
    "EpropIFPscDelta",
    "EpropIFPscDeltaAdaptive",
    "EpropOptimizer",
    "EpropReadout",
    "EpropSynapse",
    "FeedbackSynapse",
    "GradientDescent",
    "UnknownParameterError",
    "GLUE",
]

#: PyNN simulator module -> the module of this package that teaches it the e-prop types
GLUE = {"pyNN.nest": "pynn_ext.nest", "pyNN.brian2": "pynn_ext.brian2",
        "pyNN.spiNNaker": "pynn_ext.spinnaker.glue"}


def _load_glue(simulator: str) -> None:
    glue = GLUE[simulator]
    if glue not in sys.modules and importlib.util.find_spec(glue) is not None:
        importlib.import_module(glue)
    module = sys.modules[simulator]
    setup = module.setup
    if not getattr(setup, "notes_setup", False):  # remember which simulator was set up last (delay=None)

        def noted_setup(*args, **kwargs):  # noqa: ANN002,ANN003,ANN202 - PyNN's signature
            result = setup(*args, **kwargs)
            note_setup(simulator)
            return result

        noted_setup.notes_setup = True  # type: ignore[attr-defined]
        noted_setup.__doc__ = setup.__doc__
        module.setup = noted_setup


class _GlueFinder(importlib.abc.MetaPathFinder):
    """Loads a simulator's glue right after PyNN imports that simulator (``import pyNN.nest`` after this package)."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib protocol
        if fullname not in GLUE:
            return None
        sys.meta_path.remove(self)  # find the real module, then wrap its loader
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_glue(module):  # noqa: ANN001
            exec_module(module)
            _load_glue(fullname)

        loader.exec_module = exec_then_glue  # type: ignore[method-assign]
        return spec


for _simulator in GLUE:
    if _simulator in sys.modules:
        _load_glue(_simulator)
if not any(isinstance(f, _GlueFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _GlueFinder())
