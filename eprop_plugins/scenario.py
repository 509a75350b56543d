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
from . import scenario_checks as chk
from .cache import atomic_write
from .parameters import ParameterError
from .scenario_checks import PROJECTIONS

__all__ = ["FORMAT", "Population", "Scenario", "load", "PROJECTIONS"]

#: The file format this version reads and writes
FORMAT = "eprop-scenario/1"


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

        The one validation every backend relies on (each calls it first): the rules are in
        :mod:`eprop_plugins.scenario_checks`, one function per part, applied in the order below.

        Raises
        ------
        ParameterError
            Naming the field (dotted path, e.g. ``populations[0].params.tau_m``), the value and the
            allowed range.
        """
        network = chk.check_network(self.network)
        family = network["family"]
        if isinstance(self.populations, (str, bytes)) or not isinstance(self.populations, (list, tuple)):
            raise ParameterError(f"populations = {chk.show(self.populations)}: allowed values are a list of populations")
        if not self.populations:
            raise ParameterError("populations = []: at least one recurrent population is required")
        pops = []
        for k, pop in enumerate(self.populations):
            if not isinstance(pop, Population):
                raise ParameterError(f"populations[{k}] = {chk.show(pop)}: allowed values are Population objects")
            params = chk.check_population(k, pop.model, pop.size, pop.params, network)
            pops.append(Population(pop.model, int(pop.size), params))
        readout = chk.check_readout(self.readout, network)
        optimizer = chk.check_optimizer(self.optimizer, family)
        synapse = chk.check_synapse(self.synapse, family)
        n_in, n_out, n_sequences, iteration_sequences = chk.check_sizes(
            self.n_in, self.n_out, self.n_sequences, self.iteration_sequences,
            network=network, readout=readout, optimizer=optimizer)
        float32 = chk.check_flag("float32_weights", self.float32_weights)
        n_rec = sum(p.size for p in pops)
        w_in, w_rec, w_out, w_fb = chk.check_weights(
            self.w_in, self.w_rec, self.w_out, self.w_fb, n_in=n_in, n_rec=n_rec, n_out=n_out,
            network=network, optimizer=optimizer, float32=float32)
        steps = par.to_steps(network["sequence"], network["dt"], "network.sequence", allow_zero=False)
        n_steps = steps * n_sequences
        spikes = chk.check_input_spikes(self.input_spikes, n_in=n_in, steps=steps, n_steps=n_steps, family=family)
        target = chk.check_target(self.target, n_out=n_out, n_steps=n_steps,
                                  sequence_text=f"{n_sequences} sequences of {steps} steps")
        lws = chk.check_learning_window_signal(self.learning_window_signal, family=family, n_steps=n_steps)
        rec_syn = chk.check_record_synapses(self.record_synapses, n_in=n_in, n_rec=n_rec, n_out=n_out)
        return Scenario(
            name=chk.check_text("name", self.name),
            network=network,
            populations=pops,
            readout=readout,
            optimizer=optimizer,
            synapse=synapse,
            n_in=n_in,
            n_out=n_out,
            n_sequences=n_sequences,
            w_in=w_in,
            w_rec=w_rec,
            w_out=w_out,
            w_fb=w_fb,
            input_spikes=spikes,
            target=target,
            learning_window_signal=lws,
            record_synapses=rec_syn,
            description=chk.check_text("description", self.description),
            tolerance=chk.check_tolerance(self.tolerance),
            iteration_sequences=iteration_sequences,
            float32_weights=float32,
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible data (floats are written with full precision by ``json``)."""

        def arr(x: Any) -> Any:
            return None if x is None else np.asarray(x).tolist()

        return {
            "format": FORMAT,
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
        """Read the ``eprop-scenario/1`` JSON form (as :meth:`to_dict` writes it) and validate it.

        Unknown keys (at the top level and in a population; the parameter objects are checked by
        :func:`eprop_plugins.parameters.complete`) and missing required keys are refused; values
        are taken as they are (no conversion), so that :meth:`validated` sees what the file says.

        Returns
        -------
        Scenario
            The validated scenario (defaults filled in).

        Raises
        ------
        ParameterError
            Naming the field, the value and the allowed range.
        """
        chk.check_keys("", d, chk.SCENARIO_KEYS, chk.REQUIRED_SCENARIO_KEYS)
        fmt = d.get("format", FORMAT)
        if fmt != FORMAT:
            raise ParameterError(f"format = {chk.show(fmt)}: allowed value is {FORMAT!r} (what this version reads)")
        pops = d["populations"]
        if isinstance(pops, (str, bytes)) or not isinstance(pops, list):
            raise ParameterError(f"populations = {chk.show(pops)}: allowed values are a list of populations")
        populations = []
        for k, p in enumerate(pops):
            chk.check_keys(f"populations[{k}]", p, chk.POPULATION_KEYS, ("model", "size"))
            populations.append(Population(p["model"], p["size"], p.get("params", {})))
        record = d.get("record_synapses", [])
        return cls(
            name=d["name"],
            description=d.get("description", ""),
            tolerance=d.get("tolerance", {"rtol": 1e-10, "why": "float64 throughout"}),
            network=d["network"],
            populations=populations,
            readout=d.get("readout", {}),
            optimizer=d.get("optimizer", {}),
            synapse=d.get("synapse", {}),
            n_in=d["n_in"],
            n_out=d["n_out"],
            n_sequences=d["n_sequences"],
            iteration_sequences=d.get("iteration_sequences", 1),
            float32_weights=d.get("float32_weights", False),
            w_in=d["w_in"],
            w_rec=d["w_rec"],
            w_out=d["w_out"],
            w_fb=d.get("w_fb"),
            input_spikes=d["input_spikes"],
            target=d["target"],
            learning_window_signal=d.get("learning_window_signal"),
            record_synapses=[tuple(s) if isinstance(s, list) else s for s in record] if isinstance(record, list) else record,
        ).validated()

    def save(self, path: str | Path) -> Path:
        """Write the scenario as JSON (atomically: a reader never sees half a file); returns the path."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=1))


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file written by :meth:`Scenario.save`.

    Raises
    ------
    ParameterError
        For a missing or unreadable file, a file that is not JSON (with the line and column), or any
        field that :meth:`Scenario.from_dict` refuses.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParameterError(f"scenario file {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"scenario file {str(path)!r}: cannot be read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"scenario file {str(path)!r}: not valid JSON: {exc.msg} at line {exc.lineno}, "
                             f"column {exc.colno}") from None
    return Scenario.from_dict(data)
