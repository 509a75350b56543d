"""E-prop in Brian2: the ``brian2`` and ``brian2-standalone`` backends, and e-prop attached to a user's Brian2 model.

:func:`brian2_ext.runner.run_scenario` runs a scenario (see ``docs/brian2.rst``);
:func:`attach_eprop` adds e-prop learning to an existing Brian2 network (``docs/brian2_attach.rst``);
:func:`online_eprop` derives e-prop from the user's own neuron equations and learns while the user's
network runs, and :func:`derive` gives that derivation alone (``docs/brian2_own_model.rst``).
"""
from .attach import EpropAttachment, IncompatibleModelError, attach_eprop, schedule_like_eprop  # noqa: F401
from .derivation import derive  # noqa: F401
from .online import OnlineEprop, online_eprop  # noqa: F401
