"""Deprecated alias of :mod:`eprop_plugins.tasks.event` (the event family's tasks).

Kept so that ``from eprop_plugins.tasks_event import nest_test_losses`` keeps working; new code imports
from :mod:`eprop_plugins.tasks` (or :mod:`eprop_plugins.tasks.event`).
"""

from __future__ import annotations

from .tasks.event import EVENT_SINE_DEFAULT_OPTIMIZER, NEST_TEST_LOSSES, evidence_event, nest_test_losses, sine_event

__all__ = ["sine_event", "evidence_event", "nest_test_losses", "EVENT_SINE_DEFAULT_OPTIMIZER", "NEST_TEST_LOSSES"]
