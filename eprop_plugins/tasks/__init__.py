"""Learning tasks as scenarios: sine-wave pattern generation and evidence accumulation, in both families.

:func:`sine` and :func:`evidence` dispatch by family to :mod:`eprop_plugins.tasks.original` and
:mod:`eprop_plugins.tasks.event`; what both share (NEST's random draws, the sine target) is in
:mod:`eprop_plugins.tasks.common`.  The random draws follow NEST 3.10's e-prop tests and examples
exactly, so that the first losses can be checked against the public reference numbers
(docs/model.rst §5).
"""

from __future__ import annotations

from typing import Callable

from ..parameters import ParameterError
from ..scenario import Scenario
from .common import check_family, superimposed_sines
from .event import EVENT_SINE_DEFAULT_OPTIMIZER, NEST_TEST_LOSSES, evidence_event, nest_test_losses, sine_event
from .original import evidence_original, sine_original

__all__ = ["TASKS", "make_task", "sine", "evidence", "superimposed_sines", "sine_event", "nest_test_losses",
           "EVENT_SINE_DEFAULT_OPTIMIZER", "NEST_TEST_LOSSES"]


def sine(
    family: str = "original",
    iterations: int = 5,
    batch_size: int = 1,
    seed: int = 1,
    *,
    sequence_steps: int | None = None,
    model: str | None = None,
    optimizer: str | None = None,
) -> Scenario:
    """Sine-wave pattern generation (supervised regression), NEST's ``sine-waves`` example and test.

    100 frozen Poisson inputs (p = 0.05 per step), 100 recurrent neurons, one readout trained with
    mean squared error to reproduce a sum of four sines.

    Parameters
    ----------
    family : {'original', 'event'}
    iterations : int
        Number of training iterations (each of ``batch_size`` sequences).
    batch_size : int
        Sequences per weight update (original family) or per loss value (event family).
    seed : int
        Seed of ``np.random.RandomState``; 1 reproduces NEST's reference losses.
    sequence_steps : int, optional
        Sequence length in steps (default 1000 for the original family, 100 for the event family
        as in NEST's test).
    model : str, optional
        Event family recurrent model (default ``iaf``; NEST's test also runs ``iaf_adapt``,
        ``iaf_psc_delta`` and ``iaf_psc_delta_adapt``).
    optimizer : str, optional
        Event family optimizer (default ``adam`` for ``iaf``, else ``gradient_descent``, as NEST's test).
    """
    if check_family(family) == "event":
        return sine_event(iterations, batch_size, seed, sequence_steps=sequence_steps, model=model, optimizer=optimizer)
    return sine_original(iterations, batch_size, seed, sequence_steps=sequence_steps, model=model, optimizer=optimizer)


def evidence(
    family: str = "original",
    iterations: int = 5,
    batch_size: int = 1,
    seed: int = 1,
    **fixed,
) -> Scenario:
    """Evidence accumulation (store-recall), NEST's ``evidence-accumulation`` example and test.

    40 inputs in four groups (left cues, right cues, recall cue, background), 50 LIF and 50 adaptive
    LIF neurons, two readouts.  Seven cues; after a delay the network must report the side with more
    cues during the recall window.  Original family: softmax cross-entropy, Adam (eta 5e-3,
    epsilon 1e-8), averaged gradients.  Event family: the same input and recurrent network with
    mean-squared-error readouts trained on the one-hot answer during the recall window (the event
    family has no cross-entropy readout).

    ``model``, ``optimizer`` and ``sequence_steps`` are fixed by the task: passing a value is refused.
    """
    family = check_family(family)
    if fixed.get("model") or fixed.get("optimizer") or fixed.get("sequence_steps"):
        raise ParameterError("evidence: model, optimizer and sequence_steps are fixed by the task")
    factory = evidence_event if family == "event" else evidence_original
    return factory(iterations, batch_size, seed)


TASKS: dict[str, Callable[..., Scenario]] = {"sine": sine, "evidence": evidence}


def make_task(name: str, **kwargs) -> Scenario:
    """Build a task scenario by name (``sine`` or ``evidence``).

    Raises
    ------
    ParameterError
        For an unknown task name (the message lists the known ones).
    """
    try:
        factory = TASKS[name]
    except KeyError:
        raise ParameterError(f"task = {name!r}: allowed values are {', '.join(TASKS)}") from None
    return factory(**kwargs)
