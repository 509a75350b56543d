"""Pieces both families' tasks share: the sine target, float32 weights, the evidence-accumulation draws.

The random draws follow NEST 3.10's e-prop tests and examples exactly (legacy ``np.random`` seeded
with ``seed``, the same order of draws), so that the first losses can be checked against the public
reference numbers (docs/model.rst §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..parameters import FAMILIES, ParameterError

__all__ = ["superimposed_sines", "float32_values", "tile_spikes", "check_family", "EvidenceDraws", "evidence_draws"]


def superimposed_sines(rng: np.random.RandomState, steps: int, periods=(1000, 500, 333, 200)) -> np.ndarray:
    """Sum of sines with random amplitudes (then phases), starting at 0, scaled to max |x| = 1."""
    amplitudes = rng.uniform(low=0.5, high=2.0, size=len(periods))
    phases = rng.uniform(low=0.0, high=2.0 * np.pi, size=len(periods))
    sines = [
        A * np.sin(np.linspace(phi, phi + 2.0 * np.pi * (steps // T), steps))
        for A, phi, T in zip(amplitudes, phases, periods)
    ]
    x = sum(sines)
    x -= x[0]
    x /= max(np.abs(x).max(), 1e-6)
    return x


def float32_values(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to float32 and returned as float64 (NEST's and TensorFlow's examples cast weights)."""
    return np.array(x, dtype=np.float32).astype(np.float64)


def tile_spikes(bools: np.ndarray, steps: int, n_sequences: int) -> list[np.ndarray]:
    """Per input, the aligned arrival steps of a frozen pattern ``bools[input, step]`` repeated each sequence."""
    starts = np.arange(n_sequences) * steps
    return [np.concatenate([np.nonzero(b)[0] + s for s in starts]).astype(np.int64) for b in bools]


def check_family(family: Any) -> str:
    """The family name, or a :class:`ParameterError` listing the allowed ones."""
    if family not in FAMILIES:
        raise ParameterError(f"family = {family!r}: allowed values are {', '.join(FAMILIES)}")
    return family


def _glorot(rng: np.random.RandomState, fan_in: int, fan_out: int) -> np.ndarray:
    scale = 1.0 / max(1.0, (fan_in + fan_out) / 2.0)
    limit = np.sqrt(3.0 * scale)
    return rng.uniform(low=-limit, high=limit, size=(fan_in, fan_out))


@dataclass
class EvidenceDraws:
    """The family-independent part of the evidence-accumulation task (NEST's draws, in NEST's order).

    Attributes
    ----------
    steps : int
        Sequence length in steps.
    recall : int
        Steps of the recall window at the end of each sequence.
    n_in, n_reg, n_ad, n_out : int
        Inputs, LIF neurons, adaptive LIF neurons, readouts.
    w_in, w_rec, w_out, w_fb : ndarray
        Initial weights ``[post, pre]`` (float32 values).
    input_spikes : list of ndarray
        Aligned arrival steps per input.
    target : ndarray
        ``(n_out, n_sequences * steps)`` one-hot answer of each sequence.
    recurrent : dict
        Canonical parameters of the LIF neurons (the adaptive ones add ``adaptation``).
    adaptation : dict
        ``tau_a`` and ``beta`` of the adaptive neurons.
    """

    steps: int
    recall: int
    n_in: int
    n_reg: int
    n_ad: int
    n_out: int
    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    w_fb: np.ndarray
    input_spikes: list[np.ndarray]
    target: np.ndarray
    recurrent: dict[str, Any]
    adaptation: dict[str, Any]


def evidence_draws(iterations: int, batch_size: int, seed: int) -> EvidenceDraws:
    """Draw the evidence-accumulation network, cues and inputs as NEST's ``evidence-accumulation`` test.

    40 inputs in four groups (left cues, right cues, recall cue, background), 50 LIF and 50 adaptive
    LIF neurons, two readouts; seven cues, then after a delay the recall window in which the network
    must report the side with more cues.
    """
    rng = np.random.RandomState(seed)
    n_symbols, n_cues, prob_group, spike_prob = 4, 7, 0.3, 0.04
    cue, spacing, bg_noise, recall = 100, 50, 1050, 150
    T = n_cues * (cue + spacing) + bg_noise + recall
    n_in, n_ad, n_reg, n_out = 40, 50, 50, 2
    n_rec = n_ad + n_reg
    n_seq = iterations * batch_size

    w_in = float32_values(rng.randn(n_in, n_rec).T / np.sqrt(n_in))
    w_rec = float32_values(rng.randn(n_rec, n_rec).T / np.sqrt(n_rec))
    np.fill_diagonal(w_rec, 0.0)
    w_out = float32_values(_glorot(rng, n_rec, n_out).T)
    w_fb = float32_values(rng.randn(n_rec, n_out))

    bools_all, cues_all = [], []
    n_pop = n_in // n_symbols
    for _ in range(iterations):
        prob_choices = np.array([prob_group, 1 - prob_group], dtype=np.float32)
        idx = rng.choice([0, 1], batch_size)
        probs = np.zeros((batch_size, 2), dtype=np.float32)
        probs[:, 0] = prob_choices[idx]
        probs[:, 1] = prob_choices[1 - idx]
        cues = np.zeros((batch_size, n_cues), dtype=int)
        for b in range(batch_size):
            cues[b, :] = rng.choice([0, 1], n_cues, p=probs[b])
        p_in = np.zeros((batch_size, T, n_in))
        for b in range(batch_size):
            for c in range(n_cues):
                start = c * (cue + spacing) + spacing
                side = cues[b, c]
                p_in[b, start : start + cue, side * n_pop : (side + 1) * n_pop] = spike_prob
        p_in[:, -recall:, 2 * n_pop : 3 * n_pop] = spike_prob
        p_in[:, :, 3 * n_pop :] = spike_prob / 4.0
        bools = p_in > rng.rand(p_in.size).reshape(p_in.shape)
        bools[:, 0, :] = False
        bools_all.append(bools)
        cues_all.extend((np.sum(cues, axis=1) > int(n_cues / 2)).astype(int))
    raster = np.array(bools_all).reshape(n_seq * T, n_in)
    spikes = [np.nonzero(raster[:, i])[0].astype(np.int64) for i in range(n_in)]
    target = np.zeros((n_out, n_seq * T))
    for s, k in enumerate(cues_all):
        target[k, s * T : (s + 1) * T] = 1.0

    v_th = 0.6
    recurrent = {
        "tau_m": 20.0, "cm": 0.001, "v_rest": 0.0, "v_thresh": v_th, "tau_refrac": 5.0, "i_offset": 0.0,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 0.3 / v_th, "surrogate_gradient_width": 1.0 * abs(v_th),
        "c_reg": 300.0, "f_target": 10.0,
    }
    adaptation = {"tau_a": 2000.0, "beta": 1.7 * ((1.0 - np.exp(-1.0 / 2000.0)) / (1.0 - np.exp(-1.0 / 20.0)))}
    return EvidenceDraws(steps=T, recall=recall, n_in=n_in, n_reg=n_reg, n_ad=n_ad, n_out=n_out, w_in=w_in,
                         w_rec=w_rec, w_out=w_out, w_fb=w_fb, input_spikes=spikes, target=target,
                         recurrent=recurrent, adaptation=adaptation)
