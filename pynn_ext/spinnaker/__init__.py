"""E-prop on SpiNNaker: sPyNNaker model classes, their own environment, and the e-prop core kernel.

sPyNNaker pins its own software stack (numpy 2.4, which Brian2 2.9 cannot import), so it lives in
a virtual environment of its own, ``.venv-spinnaker`` in the repository
(:mod:`pynn_ext.spinnaker.environment`, ``python -m pynn_ext.spinnaker.environment``).  This package
imports neither sPyNNaker nor any other simulator: :mod:`pynn_ext.spinnaker.models` (the sPyNNaker
classes of the PyNN e-prop types) is imported only inside that environment.  See
docs/spinnaker_pynn.rst.
"""

from __future__ import annotations
