"""The scenarios ``eprop bench`` runs: the tasks, the sine task resized (dense), sparse networks at scale.

A benchmark job (a dict, see :func:`eprop_plugins.bench.child.measure`) names its scenario by
fields; :func:`job_scenario` builds it.  The parent process builds every scenario and sends it
to the child, so that the draws of a task or of a 5 000-neuron connection list do not count as the
measured run's memory.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["scaled_sine", "sparse_scaling", "job_scenario", "SCALING_STEPS", "SCALING_DENSITY"]

#: steps per sequence (1 ms each) of the sparse scaling networks: 0.1 s simulated per iteration
SCALING_STEPS = 100
#: connection probability of every projection of the scaling networks
SCALING_DENSITY = 0.1


def scaled_sine(family: str, n_rec: int, iterations: int, seed: int = 7, sequence_steps: int | None = None):
    """The sine task with ``n_rec`` recurrent neurons (dense; weights drawn as the task's, scaled by 1/sqrt(n)).

    Parameters
    ----------
    family : {'original', 'event'}
    n_rec : int
        Recurrent neurons (the task has 100).
    iterations : int
    seed : int
        Seed of the new weight draws (the inputs and the target stay the task's).
    sequence_steps : int, optional
        Sequence length in steps (the task's default if None).
    """
    from ..tasks import make_task
    from ..tasks.common import float32_values

    sc = make_task("sine", family=family, iterations=iterations, sequence_steps=sequence_steps)
    if n_rec == sc.populations[0].size:
        return sc
    rng = np.random.RandomState(seed)
    n_in, n_out = sc.n_in, sc.n_out
    w_rec = float32_values(rng.randn(n_rec, n_rec) / np.sqrt(n_rec))  # the tasks' weights are float32 values
    np.fill_diagonal(w_rec, 0.0)
    pop = dataclasses.replace(sc.populations[0], size=n_rec)
    return dataclasses.replace(
        sc, name=f"{sc.name}-n{n_rec}", populations=[pop], record_synapses=[],
        w_in=float32_values(rng.randn(n_rec, n_in) / np.sqrt(n_in)), w_rec=w_rec,
        w_out=float32_values(rng.randn(n_out, n_rec) / np.sqrt(n_rec)),
        w_fb=float32_values(rng.randn(n_rec, n_out) / np.sqrt(n_rec)))


def sparse_scaling(family: str, n_rec: int, iterations: int, density: float = SCALING_DENSITY):
    """The scaling network: ``n_rec`` LIF neurons, every projection ``density`` connected, one sequence per iteration.

    :func:`eprop_plugins.random_scenarios.sparse_network` (100 Poisson inputs, 2 readouts, sequences
    of :data:`SCALING_STEPS` steps; seed 0): the connection lists are drawn row by row, so no
    ``n_rec x n_rec`` array exists at any size.
    """
    from ..random_scenarios import sparse_network

    return sparse_network(family, n_rec, density, steps=SCALING_STEPS, n_sequences=iterations)


def job_scenario(job: dict[str, Any]):
    """The scenario of a job: ``density`` set -> :func:`sparse_scaling`; ``n_rec`` -> :func:`scaled_sine`;
    otherwise the task ``job["task"]`` (``sequence_steps`` applies to the sine task)."""
    from ..tasks import make_task

    if job.get("density"):
        return sparse_scaling(job["family"], job["n_rec"], job["iterations"], job["density"])
    if job.get("n_rec"):
        return scaled_sine(job["family"], job["n_rec"], job["iterations"], sequence_steps=job.get("sequence_steps"))
    kwargs: dict[str, Any] = {"family": job["family"], "iterations": job["iterations"]}
    if job.get("sequence_steps") and job["task"] == "sine":
        kwargs["sequence_steps"] = job["sequence_steps"]
    return make_task(job["task"], **kwargs)
