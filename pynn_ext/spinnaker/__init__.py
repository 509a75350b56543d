"""E-prop on SpiNNaker: the kernel for the ARM cores, its host build, and the sPyNNaker side of the PyNN types.

* ``c/``: the e-prop kernel of the original family in s16.15 fixed point (docs/spinnaker.rst);
  :mod:`~pynn_ext.spinnaker.fixed_point`, :mod:`~pynn_ext.spinnaker.kernel_params`,
  :mod:`~pynn_ext.spinnaker.host` and :mod:`~pynn_ext.spinnaker.emulation` build, feed and emulate it
  on the host (backend ``spinnaker-host``).
* sPyNNaker: :mod:`~pynn_ext.spinnaker.models` (sPyNNaker model classes laid out as the kernel's
  structs) and :mod:`~pynn_ext.spinnaker.glue` (``pyNN.spiNNaker`` accepts the script written for
  pyNN.nest and pyNN.brian2) run only in sPyNNaker's own environment, ``.venv-spinnaker``, which
  :mod:`~pynn_ext.spinnaker.environment` creates (sPyNNaker pins its own stack).  See
  docs/spinnaker_pynn.rst.

Importing this package imports no simulator and no submodule.
"""

from __future__ import annotations
