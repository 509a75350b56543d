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

Sparse connectivity
-------------------
``w_in``, ``w_rec`` and ``w_out`` are each either a dense matrix (every pair is a synapse, zero
weights included) or a :class:`~eprop_plugins.connectivity.SparseWeights` (only the listed pairs
are synapses; the others never transmit and never learn).  ``w_fb`` is always dense.

Files
-----
``eprop-scenario/2`` (written by :meth:`Scenario.save`, documented in docs/scenarios.rst) adds the
sparse projection ``{"shape": [n_post, n_pre], "post": [...], "pre": [...], "weight": [...]}``
(connections sorted by post, then pre) to ``eprop-scenario/1``, which is still read unchanged; a
scenario without sparse projections is written as ``eprop-scenario/1``.  A path ending in ``.npz``
is one compressed NumPy archive: the JSON document (member ``scenario.json``) whose large arrays are
references ``{"npz": "<member>"}`` to members of the same archive -- the compact form for large
networks (JSON lists of 2.5 M weights do not fit in 50 MB).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import connectivity as cn
from . import parameters as par
from . import scenario_checks as chk
from .cache import atomic_write
from .parameters import ParameterError
from .scenario_checks import PROJECTIONS

__all__ = ["FORMAT", "FORMATS", "Population", "Scenario", "load", "PROJECTIONS"]

#: The newest file format, written when a projection is sparse
FORMAT = "eprop-scenario/2"
#: Formats this version reads (``/1``: dense projections only)
FORMATS = ("eprop-scenario/1", "eprop-scenario/2")
#: Member of a ``.npz`` scenario archive that holds the JSON document
NPZ_DOCUMENT = "scenario.json"


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
    w_in, w_rec, w_out : ndarray or SparseWeights
        Initial weights, ``[post, pre]``: dense matrices or sparse connection lists
        (:mod:`eprop_plugins.connectivity`; the JSON form of a sparse one is accepted too).
    w_fb : ndarray
        Feedback weights ``(n_rec, n_out)``, dense; may be None unless ``feedback == 'random'``.
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
    w_in: cn.Weights
    w_rec: cn.Weights
    w_out: cn.Weights
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
        return cn.to_dense(self.w_out).T.copy()

    def projections(self) -> dict[str, cn.Weights]:
        """The plastic projections by name of :data:`PROJECTIONS` (``in``, ``rec``, ``out``)."""
        return {"in": self.w_in, "rec": self.w_rec, "out": self.w_out}

    @property
    def is_sparse(self) -> bool:
        """True if any plastic projection is a sparse connection list."""
        return any(cn.is_sparse(w) for w in self.projections().values())

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
        rec_syn = chk.check_record_synapses(self.record_synapses, n_in=n_in, n_rec=n_rec, n_out=n_out,
                                            weights={"in": w_in, "rec": w_rec, "out": w_out})
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
    def to_dict(self, arrays: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """Plain JSON-compatible data (floats are written with full precision by ``json``).

        Parameters
        ----------
        arrays : dict, optional
            If given, the weight, target and learning-window arrays are put into it (member name ->
            array) and the document holds references ``{"npz": name}`` to them (the ``.npz`` form).
        """

        def arr(name: str, x: Any) -> Any:
            if x is None:
                return None
            if arrays is not None:
                arrays[name] = np.asarray(x)
                return {"npz": name}
            return np.asarray(x).tolist()

        def projection(name: str, w: Any) -> Any:
            if not cn.is_sparse(w):
                return arr(name, None if w is None else np.asarray(w, dtype=float))
            # indices as int32 when they fit: half the size, exact
            small = max(w.shape) < 2**31
            itype = np.int32 if small else np.int64
            return {"shape": list(w.shape), "post": arr(f"{name}.post", w.post.astype(itype)),
                    "pre": arr(f"{name}.pre", w.pre.astype(itype)), "weight": arr(f"{name}.weight", w.weight)}

        sparse = any(cn.is_sparse(w) for w in (self.w_in, self.w_rec, self.w_out))
        return {
            "format": FORMAT if sparse or arrays is not None else FORMATS[0],
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
            "w_in": projection("w_in", self.w_in),
            "w_rec": projection("w_rec", self.w_rec),
            "w_out": projection("w_out", self.w_out),
            "w_fb": projection("w_fb", self.w_fb),
            "input_spikes": [np.asarray(s, dtype=np.int64).tolist() for s in self.input_spikes],
            "target": arr("target", self.target),
            "learning_window_signal": arr("learning_window_signal", self.learning_window_signal),
            "record_synapses": [list(s) for s in self.record_synapses],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], arrays: Any = None) -> "Scenario":
        """Read the ``eprop-scenario/1`` or ``/2`` JSON form (as :meth:`to_dict` writes it) and validate it.

        Unknown keys (at the top level and in a population; the parameter objects are checked by
        :func:`eprop_plugins.parameters.complete`) and missing required keys are refused; values
        are taken as they are (no conversion), so that :meth:`validated` sees what the file says.

        Parameters
        ----------
        d : dict
            The document.
        arrays : mapping, optional
            Members of the ``.npz`` archive the document's ``{"npz": name}`` references point to.

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
        fmt = d.get("format", FORMATS[0])
        if fmt not in FORMATS:
            raise ParameterError(f"format = {chk.show(fmt)}: allowed values are {', '.join(map(repr, FORMATS))} "
                                 f"(what this version reads)")

        def resolve(where: str, value: Any) -> Any:
            if isinstance(value, dict) and set(value) == {"npz"}:
                if arrays is None:
                    raise ParameterError(f"{where} = {chk.show(value)}: an archive reference in a JSON file; allowed "
                                         f"only in a .npz scenario archive")
                name = value["npz"]
                if not isinstance(name, str) or name not in arrays:
                    raise ParameterError(f"{where} = {chk.show(value)}: the archive has no member {name!r}")
                return arrays[name]
            return value

        def projection(where: str, value: Any) -> Any:
            if isinstance(value, dict) and set(value) != {"npz"}:
                if fmt == FORMATS[0]:
                    raise ParameterError(f"{where} = {chk.show(value)}: a sparse projection needs format "
                                         f"{FORMAT!r}; {fmt!r} has dense matrices only")
                return {k: resolve(f"{where}.{k}", v) if k != "shape" else v for k, v in value.items()}
            return resolve(where, value)

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
            w_in=projection("w_in", d["w_in"]),
            w_rec=projection("w_rec", d["w_rec"]),
            w_out=projection("w_out", d["w_out"]),
            w_fb=projection("w_fb", d.get("w_fb")),
            input_spikes=d["input_spikes"],
            target=resolve("target", d["target"]),
            learning_window_signal=resolve("learning_window_signal", d.get("learning_window_signal")),
            record_synapses=[tuple(s) if isinstance(s, list) else s for s in record] if isinstance(record, list) else record,
        ).validated()

    def save(self, path: str | Path) -> Path:
        """Write the scenario atomically (a reader never sees half a file); returns the path.

        A path ending in ``.npz`` gets the compressed archive form (module docstring), any other
        path the JSON form.
        """
        path = Path(path)
        if path.suffix != ".npz":
            return atomic_write(path, json.dumps(self.to_dict(), indent=1))
        arrays: dict[str, np.ndarray] = {}
        doc = json.dumps(self.to_dict(arrays), indent=1)
        buf = io.BytesIO()
        np.savez_compressed(buf, **{NPZ_DOCUMENT: np.frombuffer(doc.encode(), dtype=np.uint8)}, **arrays)
        return atomic_write(path, buf.getvalue())


def _load_archive(path: Path) -> Scenario:
    """Read a ``.npz`` scenario archive (see the module docstring)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if NPZ_DOCUMENT not in npz.files:
                raise ParameterError(f"scenario file {str(path)!r}: a .npz archive without the member "
                                     f"{NPZ_DOCUMENT!r}; not a scenario archive")
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ParameterError(f"scenario file {str(path)!r}: cannot be read as a .npz archive ({exc})") from None
    try:
        data = json.loads(arrays.pop(NPZ_DOCUMENT).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(f"scenario file {str(path)!r}: member {NPZ_DOCUMENT!r} is not valid JSON ({exc})") from None
    return Scenario.from_dict(data, arrays)


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file written by :meth:`Scenario.save` (JSON or ``.npz`` archive).

    Raises
    ------
    ParameterError
        For a missing or unreadable file, a file that is not JSON (with the line and column), or any
        field that :meth:`Scenario.from_dict` refuses.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise ParameterError(f"scenario file {str(path)!r}: no such file") from None
    except OSError as exc:
        raise ParameterError(f"scenario file {str(path)!r}: cannot be read ({exc})") from None
    if magic == b"PK\x03\x04":  # a zip archive: the .npz form, whatever the file is called
        return _load_archive(path)
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
