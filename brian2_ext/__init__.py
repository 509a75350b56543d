"""E-prop in Brian2: the ``brian2`` and ``brian2-standalone`` backends, and e-prop attached to a user's Brian2 model.

:func:`brian2_ext.runner.run_scenario` runs a scenario (see ``docs/brian2.rst``);
:func:`attach_eprop` adds e-prop learning to an existing Brian2 network (``docs/brian2_attach.rst``).
"""
from .attach import EpropAttachment, IncompatibleModelError, attach_eprop, schedule_like_eprop  # noqa: F401
