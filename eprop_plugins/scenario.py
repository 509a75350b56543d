"""A scenario: one complete, serialisable e-prop experiment that any backend can run.

Time convention ("aligned time", used by every backend's inputs and outputs)
----------------------------------------------------------------------------
Global step ``n = s * T + t`` counts time steps from the start of sequence 0, with ``T`` the
sequence length in steps and ``t`` the position inside sequence ``s``.

* ``input_spikes[i]`` lists the steps ``n`` at which a spike of input ``i`` *arrives* at the
  recurrent neurons, i.e. changes their potential in step ``n``.  (In NEST the spike generator
  fires earlier: the backends add the offsets of wiring and delays, see docs/model.rst §0.)
* recurrent spikes of step ``n`` reach other recurrent neurons in step ``n + 1`` and the readout
  in step ``n`` (the readout value of step ``n`` contains them);
* ``target[k, n]`` is compared with the readout signal of step ``n``; the learning signal of
  step ``n`` pairs with the surrogate gradient of step ``n``.

Weights are in mV (an arriving spike adds ``w``, or ``(1 - exp(-dt/tau_m)) w`` in the original
family without regular spike arrival), feedback weights are dimensionless.  Matrices are indexed
``[post, pre]``: ``w_in`` (n_rec, n_in), ``w_rec`` (n_rec, n_rec), ``w_out`` (n_out, n_rec) and
``w_fb`` (n_rec, n_out) with ``w_fb[j, k] = B_jk``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import parameters as par
from .parameters import ParameterError

__all__ = ["Population", "Scenario", "load", "PROJECTIONS"]

#: Plastic projections, in the order used by weight events (``proj`` index).
PROJECTIONS = ("in", "rec", "out")


@dataclass
class Population:
    """A group of recurrent neurons of one model with one parameter set.

    Parameters
    ----------
    model : str
        ``iaf``, ``iaf_adapt``, ``iaf_psc_delta`` or ``iaf_psc_delta_adapt``.
    size : int
        Number of neurons.
    params : dict
        Canonical recurrent-neuron parameters (:data:`eprop_plugins.parameters.RECURRENT`).
    """

    model: str
    size: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    """One e-prop experiment, complete and explicit.

    Parameters
    ----------
    name : str
        Identifier (used in reports and file names).
    network : dict
        Canonical network parameters (family, dt, sequence, learning_window, feedback).
    populations : list of Population
        Recurrent populations, concatenated in order (neuron index = position in that order).
    readout : dict
        Canonical readout parameters.
    optimizer : dict
        Canonical optimizer parameters (shared by all plastic synapses).
    synapse : dict
        Canonical synapse parameters.
    n_in, n_out : int
        Number of inputs and readouts.
    n_sequences : int
        Number of sequences simulated (iterations x batch size in the original family).
    w_in, w_rec, w_out, w_fb : ndarray
        Initial weights, ``[post, pre]``; ``w_fb`` may be None unless ``feedback == 'random'``.
    input_spikes : list of ndarray of int
        For each input, the aligned steps at which its spikes arrive.
    target : ndarray
        ``(n_out, n_steps)`` target signal (one-hot class for cross-entropy).
    learning_window_signal : ndarray, optional
        Event family: per-step factor on the error (``(n_steps,)``); None means all ones.
    record_synapses : list of (str, int, int)
        Synapses whose z-bar, e and e-bar traces are recorded: ``(projection, pre, post)``.
    description, tolerance : str, dict
        What the scenario shows, and ``{"rtol": float, "why": str}`` for the validation.
    iteration_sequences : int
        Sequences per loss value (the batch size in the original family); default 1.
    float32_weights : bool
        The weights are float32 values (NEST's and TensorFlow's examples cast them); checked.
    """

    name: str
    network: dict[str, Any]
    populations: list[Population]
    readout: dict[str, Any]
    optimizer: dict[str, Any]
    synapse: dict[str, Any]
    n_in: int
    n_out: int
    n_sequences: int
    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    w_fb: np.ndarray | None
    input_spikes: list[np.ndarray]
    target: np.ndarray
    learning_window_signal: np.ndarray | None = None
    record_synapses: list[tuple[str, int, int]] = field(default_factory=list)
    description: str = ""
    tolerance: dict[str, Any] = field(default_factory=lambda: {"rtol": 1e-10, "why": "float64 throughout"})
    iteration_sequences: int = 1
    float32_weights: bool = False

    # ------------------------------------------------------------------ derived quantities
    @property
    def family(self) -> str:
        return self.network.get("family", "original")

    @property
    def n_rec(self) -> int:
        return int(sum(p.size for p in self.populations))

    @property
    def dt(self) -> float:
        return float(self.network.get("dt", 1.0))

    @property
    def steps_per_sequence(self) -> int:
        return par.to_steps(self.network["sequence"], self.dt, "network.sequence", allow_zero=False)

    @property
    def n_steps(self) -> int:
        return self.steps_per_sequence * self.n_sequences

    @property
    def n_iterations(self) -> int:
        return self.n_sequences // self.iteration_sequences

    def learning_window_steps(self) -> int:
        lw = self.network.get("learning_window")
        if lw is None:
            return self.steps_per_sequence
        return par.to_steps(lw, self.dt, "network.learning_window", allow_zero=False)

    def neuron_models(self) -> list[str]:
        """Model name of every recurrent neuron."""
        return [p.model for p in self.populations for _ in range(p.size)]

    def effective_feedback(self) -> np.ndarray:
        """The initial feedback matrix B ``(n_rec, n_out)`` implied by the feedback mode."""
        if self.network.get("feedback", "random") == "random":
            assert self.w_fb is not None
            return np.array(self.w_fb, dtype=float)
        return np.array(self.w_out, dtype=float).T.copy()

    # ------------------------------------------------------------------ validation
    def validated(self) -> "Scenario":
        """Check every field; return a copy with all parameter defaults filled in.

        Raises
        ------
        ParameterError
            Naming the field, the value and the allowed range.
        """
        network = par.complete("network", self.network)
        family = network["family"]
        dt = network["dt"]
        steps = par.to_steps(network["sequence"], dt, "network.sequence", allow_zero=False)
        if network["learning_window"] is not None:
            lw = par.to_steps(network["learning_window"], dt, "network.learning_window", allow_zero=False)
            if lw > steps:
                raise ParameterError(
                    f"network.learning_window = {network['learning_window']} ms: allowed range is "
                    f"0 < learning_window <= sequence ({network['sequence']} ms)"
                )
        if not self.populations:
            raise ParameterError("populations: at least one recurrent population is required")
        pops = []
        for k, pop in enumerate(self.populations):
            where = f"populations[{k}]"
            if pop.model not in par.RECURRENT_MODELS:
                raise ParameterError(
                    f"{where}.model = {pop.model!r}: allowed values are {', '.join(par.RECURRENT_MODELS)}"
                )
            if family not in par.RECURRENT_MODELS[pop.model]:
                raise ParameterError(
                    f"{where}.model = {pop.model!r}: exists only in family "
                    f"{'/'.join(par.RECURRENT_MODELS[pop.model])}, not {family!r}"
                )
            if not isinstance(pop.size, (int, np.integer)) or pop.size < 1:
                raise ParameterError(f"{where}.size = {pop.size!r}: allowed range is integer >= 1")
            params = par.complete("recurrent", pop.params, family=family, model=pop.model, where=f"{where}.params")
            par.to_steps(params["tau_refrac"], dt, f"{where}.params.tau_refrac")
            if params["v_min"] is not None and params["v_thresh"] < params["v_min"]:
                raise ParameterError(
                    f"{where}.params.v_thresh = {params['v_thresh']} mV: allowed range is >= v_min ({params['v_min']} mV)"
                )
            pops.append(Population(pop.model, int(pop.size), params))
        readout = par.complete("readout", self.readout, family=family)
        if family == "event" and readout["loss"] != "mean_squared_error":
            raise ParameterError(
                f"readout.loss = {readout['loss']!r}: the event family supports only 'mean_squared_error'"
            )
        optimizer = par.complete("optimizer", self.optimizer, family=family)
        if optimizer["w_min"] > optimizer["w_max"]:
            raise ParameterError(
                f"optimizer.w_min = {optimizer['w_min']} mV: allowed range is <= w_max ({optimizer['w_max']} mV)"
            )
        synapse = par.complete("synapse", self.synapse, family=family)
        for name in ("n_in", "n_out", "n_sequences", "iteration_sequences"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(f"{name} = {value!r}: allowed range is integer >= 1")
        if self.n_sequences % self.iteration_sequences:
            raise ParameterError(
                f"n_sequences = {self.n_sequences}: must be a multiple of iteration_sequences ({self.iteration_sequences})"
            )
        n_rec = sum(p.size for p in pops)
        if readout["loss"] == "cross_entropy" and self.n_out < 2:
            raise ParameterError(f"n_out = {self.n_out}: cross_entropy needs at least 2 readouts")

        def matrix(name: str, value: Any, shape: tuple[int, int]) -> np.ndarray:
            arr = np.asarray(value, dtype=float)
            if arr.shape != shape:
                raise ParameterError(
                    f"{name}: shape {arr.shape} does not match the sizes; expected {shape} [post, pre]"
                )
            if not np.all(np.isfinite(arr)):
                raise ParameterError(f"{name}: all weights must be finite")
            if self.float32_weights and not np.array_equal(arr, arr.astype(np.float32).astype(float)):
                raise ParameterError(f"{name}: float32_weights is set but the weights are not float32 values")
            return arr

        w_in = matrix("w_in", self.w_in, (n_rec, self.n_in))
        w_rec = matrix("w_rec", self.w_rec, (n_rec, n_rec))
        if np.any(np.diag(w_rec) != 0):
            raise ParameterError("w_rec: autapses are not supported; the diagonal must be zero")
        w_out = matrix("w_out", self.w_out, (self.n_out, n_rec))
        if network["feedback"] == "random":
            if self.w_fb is None:
                raise ParameterError("w_fb: required when network.feedback = 'random'")
            w_fb = matrix("w_fb", self.w_fb, (n_rec, self.n_out))
        else:
            w_fb = None if self.w_fb is None else matrix("w_fb", self.w_fb, (n_rec, self.n_out))
        n_steps = steps * self.n_sequences
        if len(self.input_spikes) != self.n_in:
            raise ParameterError(f"input_spikes: {len(self.input_spikes)} spike trains for n_in = {self.n_in} inputs")
        spikes = []
        for i, train in enumerate(self.input_spikes):
            arr = np.asarray(train)
            if arr.size and (arr.dtype.kind not in "iu"):
                if not np.all(arr == np.round(arr)):
                    raise ParameterError(f"input_spikes[{i}]: spike steps must be integers")
                arr = arr.astype(np.int64)
            arr = arr.astype(np.int64).ravel()
            if arr.size and (arr.min() < 0 or arr.max() >= n_steps):
                raise ParameterError(
                    f"input_spikes[{i}]: spike steps must lie in [0, {n_steps - 1}] (the simulated sequences)"
                )
            if arr.size and np.any(np.diff(arr) <= 0):
                raise ParameterError(f"input_spikes[{i}]: spike steps must be strictly increasing")
            if family == "original" and np.any(arr % steps == 0):
                raise ParameterError(
                    f"input_spikes[{i}]: a spike arrives in the first step of a sequence; the original family "
                    f"drops such spikes (NEST *_bsshslm_2020 behaviour), so scenarios must not contain them"
                )
            spikes.append(arr)
        target = np.asarray(self.target, dtype=float)
        if target.ndim != 2 or target.shape[0] != self.n_out:
            raise ParameterError(f"target: shape {target.shape}, expected ({self.n_out}, {n_steps}) [readout, step]")
        if target.shape[1] < n_steps:
            raise ParameterError(
                f"target: {target.shape[1]} steps is shorter than the {n_steps} simulated steps "
                f"({self.n_sequences} sequences of {steps} steps)"
            )
        target = target[:, :n_steps]
        lws = None
        if self.learning_window_signal is not None:
            if family != "event":
                raise ParameterError("learning_window_signal: only the event family takes a per-step learning window")
            lws = np.asarray(self.learning_window_signal, dtype=float).ravel()
            if lws.shape[0] < n_steps:
                raise ParameterError(f"learning_window_signal: {lws.shape[0]} steps is shorter than {n_steps}")
            lws = lws[:n_steps]
        sizes = {"in": self.n_in, "rec": n_rec, "out": n_rec}
        posts = {"in": n_rec, "rec": n_rec, "out": self.n_out}
        rec_syn = []
        for entry in self.record_synapses:
            proj, pre, post = entry
            if proj not in PROJECTIONS or not (0 <= pre < sizes[proj]) or not (0 <= post < posts[proj]):
                raise ParameterError(f"record_synapses: {entry!r} is not a synapse of this network")
            if proj == "rec" and pre == post:
                raise ParameterError(f"record_synapses: {entry!r} is an autapse, which does not exist")
            rec_syn.append((str(proj), int(pre), int(post)))
        return Scenario(
            name=self.name,
            network=network,
            populations=pops,
            readout=readout,
            optimizer=optimizer,
            synapse=synapse,
            n_in=int(self.n_in),
            n_out=int(self.n_out),
            n_sequences=int(self.n_sequences),
            w_in=w_in,
            w_rec=w_rec,
            w_out=w_out,
            w_fb=w_fb,
            input_spikes=spikes,
            target=target,
            learning_window_signal=lws,
            record_synapses=rec_syn,
            description=self.description,
            tolerance=dict(self.tolerance),
            iteration_sequences=int(self.iteration_sequences),
            float32_weights=bool(self.float32_weights),
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible data (floats are written with full precision by ``json``)."""

        def arr(x: Any) -> Any:
            return None if x is None else np.asarray(x).tolist()

        return {
            "format": "eprop-scenario/1",
            "name": self.name,
            "description": self.description,
            "tolerance": self.tolerance,
            "network": self.network,
            "populations": [{"model": p.model, "size": p.size, "params": p.params} for p in self.populations],
            "readout": self.readout,
            "optimizer": self.optimizer,
            "synapse": self.synapse,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "n_sequences": self.n_sequences,
            "iteration_sequences": self.iteration_sequences,
            "float32_weights": self.float32_weights,
            "w_in": arr(self.w_in),
            "w_rec": arr(self.w_rec),
            "w_out": arr(self.w_out),
            "w_fb": arr(self.w_fb),
            "input_spikes": [np.asarray(s, dtype=np.int64).tolist() for s in self.input_spikes],
            "target": arr(self.target),
            "learning_window_signal": arr(self.learning_window_signal),
            "record_synapses": [list(s) for s in self.record_synapses],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scenario":
        fmt = d.get("format", "eprop-scenario/1")
        if fmt != "eprop-scenario/1":
            raise ParameterError(f"format = {fmt!r}: this version reads 'eprop-scenario/1'")

        def arr(x: Any) -> Any:
            return None if x is None else np.asarray(x, dtype=float)

        return cls(
            name=d["name"],
            description=d.get("description", ""),
            tolerance=d.get("tolerance", {"rtol": 1e-10, "why": "float64 throughout"}),
            network=dict(d["network"]),
            populations=[Population(p["model"], int(p["size"]), dict(p.get("params", {}))) for p in d["populations"]],
            readout=dict(d.get("readout", {})),
            optimizer=dict(d.get("optimizer", {})),
            synapse=dict(d.get("synapse", {})),
            n_in=int(d["n_in"]),
            n_out=int(d["n_out"]),
            n_sequences=int(d["n_sequences"]),
            iteration_sequences=int(d.get("iteration_sequences", 1)),
            float32_weights=bool(d.get("float32_weights", False)),
            w_in=arr(d["w_in"]),
            w_rec=arr(d["w_rec"]),
            w_out=arr(d["w_out"]),
            w_fb=arr(d.get("w_fb")),
            input_spikes=[np.asarray(s, dtype=np.int64) for s in d["input_spikes"]],
            target=arr(d["target"]),
            learning_window_signal=arr(d.get("learning_window_signal")),
            record_synapses=[tuple(s) for s in d.get("record_synapses", [])],
        )

    def save(self, path: str | Path) -> Path:
        """Write the scenario as JSON; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path


def load(path: str | Path) -> Scenario:
    """Read a scenario written by :meth:`Scenario.save`."""
    return Scenario.from_dict(json.loads(Path(path).read_text()))
