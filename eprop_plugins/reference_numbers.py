"""Public reference losses (docs/model.rst §5, from NEST 3.10's own test suite).

These are facts about NEST's and TensorFlow's published runs, used by the tests and shown next to
training curves.  Seed 1, first five iterations.
"""

from __future__ import annotations

from .tasks.event import EVENT_SINE_DEFAULT_OPTIMIZER, NEST_TEST_LOSSES

__all__ = ["SINE_ORIGINAL_NEST", "SINE_ORIGINAL_TF", "EVIDENCE_ORIGINAL_NEST", "nest_reference_losses"]

#: sine-wave regression, original family, batch 1 (NEST, rtol 1e-8)
SINE_ORIGINAL_NEST = [101.964356999041, 103.466731126205, 103.340607074771, 103.680244037686, 104.412775748752]
#: the same with the TensorFlow (INM-6 fork) code (rtol 1e-7)
SINE_ORIGINAL_TF = [101.964363098144, 103.466735839843, 103.340606689453, 103.680244445800, 104.412780761718]
#: evidence accumulation, original family, by batch size (NEST, rtol 1e-8)
EVIDENCE_ORIGINAL_NEST = {
    1: [0.741152550006, 0.740388187700, 0.665785233177, 0.663644193322, 0.729428962844],
    2: [0.702163370672, 0.735555303152, 0.740354864111, 0.683882815282, 0.707841122268],
}


def nest_reference_losses(task: str, family: str, batch_size: int, seed: int, *, model=None, optimizer=None):
    """The published NEST losses for this task set-up, or None where none are published.

    For the event-family sine task these are the numbers of NEST's ``test_eprop_regression``, which
    measures its loss one step earlier than ``Result.losses`` does: compare them with
    :func:`eprop_plugins.tasks.nest_test_losses` of the run.
    """
    if seed != 1:
        return None
    if family == "event":
        model = model or "iaf"
        if task != "sine" or batch_size != 1 or optimizer not in (None, EVENT_SINE_DEFAULT_OPTIMIZER.get(model)):
            return None
        return list(NEST_TEST_LOSSES.get(model, ())) or None
    if model or optimizer:
        return None
    if task == "sine" and batch_size == 1:
        return list(SINE_ORIGINAL_NEST)
    if task == "evidence":
        return list(EVIDENCE_ORIGINAL_NEST.get(batch_size, [])) or None
    return None
