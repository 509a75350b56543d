"""Add e-prop learning to an existing Brian2 model.

:func:`attach_eprop` takes the user's input group (a ``SpikeGeneratorGroup``), recurrent
``NeuronGroup`` and ``Synapses``, checks that they describe the original e-prop family's LIF network
(:mod:`brian2_ext.attach_inspect` says precisely what does not fit), adds readouts, feedback and an
optimizer with the canonical parameters, and returns an :class:`EpropAttachment`.

``EpropAttachment.train`` builds the *equivalent scenario* (the user's parameters, weights and
input spikes in canonical units, which also checks them) and trains the user's own objects with
:func:`brian2_ext.online.online_eprop` -- the e-prop derived from their equations, in the e-prop
slots -- which equals the NumPy reference of that scenario; the trained weights go back into the
user's ``Synapses``.  attach_eprop is thus the canonical special case of the online learner.
The user's network stays a plain Brian2 network: run it as before, now with
trained weights.  The readout weights (which have no Brian2 counterpart in the user's model) are
on the attachment.

See ``docs/brian2_attach.rst`` for the mapping from Brian2 models to e-prop families.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eprop_plugins import parameters as par
from eprop_plugins.parameters import ParameterError
from eprop_plugins.results import Result
from eprop_plugins.scenario import Population, Scenario

from .attach_inspect import (EPROP_SLOTS, IncompatibleModelError, common_dt, quantity_to_canonical, read_inputs, read_recurrent,
                             read_synapses)

__all__ = ["attach_eprop", "EpropAttachment", "IncompatibleModelError", "schedule_like_eprop"]

#: recurrent parameters that come from the user's Brian2 model, never from ``parameters['eprop']``
#: (``v_min``, the lower bound of the potential, is not a Brian2 model statement: it comes from ``eprop=``)
FROM_MODEL = ("tau_m", "cm", "v_rest", "v_thresh", "tau_refrac", "i_offset", "regular_spike_arrival")

#: the e-prop family that attach_eprop maps Brian2 models to
FAMILY = "original"

#: sections of ``parameters=``: the scenario's canonical sections, ``eprop`` for the recurrent e-prop parameters
PARAMETER_SECTIONS = ("network", "readout", "optimizer", "synapse", "eprop")

#: keys of ``readout_weights=``
READOUT_WEIGHT_KEYS = ("w_out", "w_fb", "seed")

#: code generation of :meth:`EpropAttachment.train`
TRAIN_MODES = ("cython", "numpy", "standalone")


def _canonical(table: str, values: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Brian2 quantities in a parameter dictionary converted to the table's canonical units."""
    rows = {row.name: row for row in par.TABLES[table]}
    out = {}
    for key, value in dict(values or {}).items():
        row = rows.get(key)
        out[key] = quantity_to_canonical(value, row.unit, f"{where}.{key}") if row else value
    return out


@contextmanager
def _brian2_state_preserved():
    """Keep the user's Brian2 preferences and default clock as they were (the e-prop run sets its own)."""
    import brian2 as b2

    names = ["codegen.target", "codegen.loop_invariant_optimisations", "codegen.cpp.extra_compile_args_gcc",
             "codegen.runtime.cython.cache_dir", "devices.cpp_standalone.openmp_threads",
             "devices.cpp_standalone.extra_make_args_unix", "logging.console_log_level"]
    saved = {n: b2.prefs[n] for n in names}
    dt = b2.defaultclock.dt
    try:
        yield
    finally:
        for n, v in saved.items():
            b2.prefs[n] = v
        b2.defaultclock.dt = dt


def schedule_like_eprop(recurrent, *synapses) -> None:
    """Schedule a user's LIF network so that Brian2 itself simulates the original e-prop family.

    Moves the recurrent group's reset and the synapses' ``on_pre`` to Brian2's ``after_groups`` slot
    (after the leak, before the threshold test).  There they act on the *previous* step's spikes:
    the threshold is subtracted one step late and undecayed, and an arriving weight is added
    undecayed before the test, as in the original family.  Measured on the sine example: identical
    spikes over a 1000-step sequence, v within 6e-16 mV (the order of the synaptic sum differs).
    Neuron state is not reset between sequences (the e-prop model resets it at each sequence start).
    """
    recurrent.resetter["spike"].when = EPROP_SLOTS[0]
    for syn in synapses:
        for path in syn._pathways:
            path.when, path.order = EPROP_SLOTS[0], 1  # after the reset (order 0): same value up to rounding


class EpropAttachment:
    """E-prop learning attached to a user's Brian2 network; create it with :func:`attach_eprop`.

    Attributes
    ----------
    weights : dict of ndarray
        Current weights in canonical units, ``[post, pre]``: ``in`` and ``rec`` (mV, also in the user's
        Synapses), ``out`` (mV, recurrent -> readout) and ``fb`` (dimensionless feedback B, ``(n_rec, n_out)``).
    notes : list of str
        How Brian2's own simulation of the user's group differs from the trained e-prop model.
    new_objects : list
        Brian2 objects created for the user (recurrent Synapses when none were given): add them to
        the user's Network to run the trained model.
    results : list of Result
        One per :meth:`train` call.
    """

    def __init__(self, *, inputs, recurrent, syn_in, syn_rec, population: Population, readout, optimizer, synapse,
                 network, input_steps, weights, new_objects, notes, weight_name: str, voltage_name: str = "v",
                 namespace: Mapping[str, Any] | None = None):
        self.inputs, self.recurrent = inputs, recurrent
        self._syn = {"in": syn_in, "rec": syn_rec}
        self.population = population
        self.readout, self.optimizer, self.synapse, self.network = readout, optimizer, synapse, network
        self._input_steps = input_steps
        self.weights = weights
        self.new_objects = new_objects
        self.notes = notes
        self._weight = weight_name
        self._written: dict[str, np.ndarray] = {}
        self.population_voltage = voltage_name
        self._namespace: Mapping[str, Any] = dict(namespace or {})
        self.results: list[Result] = []

    # ---------------------------------------------------------------- the user's objects
    @property
    def synapses(self) -> dict[str, Any]:
        """The user's plastic Synapses by projection (``'in'``, ``'rec'``; None where there are none)."""
        return dict(self._syn)

    @property
    def weight_name(self) -> str:
        """Name of the weight variable in the user's Synapses."""
        return self._weight

    @property
    def namespace(self) -> dict[str, Any]:
        """External names of the user's model strings."""
        return dict(self._namespace)

    # ---------------------------------------------------------------- sizes
    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_rec(self) -> int:
        return len(self.recurrent)

    @property
    def n_out(self) -> int:
        return self.weights["out"].shape[0]

    @property
    def steps_per_sequence(self) -> int:
        return par.to_steps(self.network["sequence"], self.network["dt"], "network.sequence", allow_zero=False)

    @property
    def losses(self) -> np.ndarray:
        """Losses of all :meth:`train` calls so far, in order."""
        return np.concatenate([r.losses for r in self.results]) if self.results else np.zeros(0)

    # ---------------------------------------------------------------- the equivalent scenario
    def _sync_from_user(self) -> None:
        """Re-read a projection whose Synapses the user changed since the last write-back."""
        import brian2 as b2

        for proj, syn in self._syn.items():
            if syn is None or proj not in self._written:
                continue
            now = np.asarray(syn.variables[self._weight].get_value())
            if not np.array_equal(now, self._written[proj]):
                i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
                self.weights[proj][j, i] = now / float(b2.mV)

    def _target(self, target: Any, n_sequences: int) -> np.ndarray:
        T = self.steps_per_sequence
        arr = np.asarray(quantity_to_canonical(target, "mV", "target"), dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] != self.n_out or arr.shape[1] not in (T, n_sequences * T):
            raise ParameterError(
                f"target: shape {np.shape(target)}; expected ({self.n_out}, {T}) for one sequence (repeated) or "
                f"({self.n_out}, {n_sequences * T}) for all sequences [readout, step] (1-D for one readout)")
        return np.tile(arr, n_sequences) if arr.shape[1] == T else arr

    def scenario(self, iterations: int, target: Any, *, record_synapses: Sequence[tuple[str, int, int]] = (),
                 name: str = "brian2-attach") -> Scenario:
        """The canonical scenario equivalent to training the user's model from its current weights.

        Parameters
        ----------
        iterations : int
            Training iterations (each ``optimizer['batch_size']`` sequences).
        target : array_like or Quantity
            Target readout signal in mV (mean squared error) or one-hot classes (cross-entropy):
            ``(n_out, T)`` for one sequence (repeated every sequence) or ``(n_out, iterations * batch * T)``.
        record_synapses : list of (str, int, int)
            Synapses whose traces to record: ``('in' | 'rec' | 'out', pre, post)``.
        """
        if not isinstance(iterations, (int, np.integer)) or iterations < 1:
            raise ParameterError(f"iterations = {iterations!r}: allowed range is integer >= 1")
        self._sync_from_user()
        batch = int(self.optimizer.get("batch_size", 1))
        n_seq = int(iterations) * batch
        T = self.steps_per_sequence
        starts = np.arange(n_seq) * T
        spikes = [np.concatenate([steps + 1 + s for s in starts]).astype(np.int64) for steps in self._input_steps]
        return Scenario(
            name=name,
            description=f"e-prop attached to Brian2 groups '{self.inputs.name}' -> '{self.recurrent.name}'",
            network=dict(self.network),
            populations=[Population(self.population.model, self.population.size, dict(self.population.params))],
            readout=dict(self.readout),
            optimizer=dict(self.optimizer),
            synapse=dict(self.synapse),
            n_in=self.n_in,
            n_out=self.n_out,
            n_sequences=n_seq,
            iteration_sequences=batch,
            w_in=self.weights["in"].copy(),
            w_rec=self.weights["rec"].copy(),
            w_out=self.weights["out"].copy(),
            w_fb=self.weights["fb"].copy(),
            input_spikes=spikes,
            target=self._target(target, n_seq),
            record_synapses=list(record_synapses),
        ).validated()

    # ---------------------------------------------------------------- training
    def train(self, iterations: int, target: Any, *, mode: str = "cython", record: bool = True,
              record_synapses: Sequence[tuple[str, int, int]] = (), write_back: bool = True,
              on_iteration: Callable[[int, float], None] | None = None) -> Result:
        """Train with e-prop; return the Result (losses, traces in aligned time, weight snapshots).

        The training is :func:`brian2_ext.online.online_eprop` on the user's own objects, in the
        e-prop slots (:func:`schedule_like_eprop`) with NEST's interval boundary, driven by the
        input spikes of :meth:`scenario` (each sequence replayed).  Each call starts from the
        current weights with a fresh optimizer state: one call with all iterations equals the
        reference run of :meth:`scenario`.

        Parameters
        ----------
        iterations : int
        target : array_like or Quantity
            See :meth:`scenario`.
        mode : {'cython', 'numpy', 'standalone'}
            Brian2 code generation (runtime with the Cython or NumPy target, or cpp_standalone).
        record : bool
            Keep the per-step traces in the Result.
        record_synapses : list of (str, int, int)
            Synapses whose z-bar, e and e-bar traces to record.
        write_back : bool
            Write the trained input and recurrent weights into the user's Synapses.
        on_iteration : callable, optional
            ``on_iteration(index, loss)`` after the run, for each iteration.
        """
        import time

        from .attach_training import train_online

        if mode not in TRAIN_MODES:
            raise ParameterError(f"mode = {mode!r}: valid modes are {', '.join(TRAIN_MODES)}")
        sc = self.scenario(iterations, target, record_synapses=record_synapses)
        t0 = time.perf_counter()
        with _brian2_state_preserved():
            res = train_online(self, sc, mode=mode)
        res.meta["seconds"] = time.perf_counter() - t0
        for key, proj in (("w_in", "in"), ("w_rec", "rec"), ("w_out", "out"), ("w_fb", "fb")):
            self.weights[proj] = np.array(res.weights[key][-1], dtype=float)
        if self.network["feedback"] == "symmetric_initial":
            # B was fixed at the first call's initial W_out; later calls keep it
            self.network = dict(self.network, feedback="random")
        if on_iteration is not None:
            for k, loss in enumerate(res.losses):
                on_iteration(k, float(loss))
        if not record:
            res.traces, res.synapse_traces = {}, {}
        self.results.append(res)
        if write_back:
            self.write_back()
        return res

    def compare_forward(self, network, target: Any = None) -> dict[str, Any]:
        """Run the user's own Brian2 network for one sequence and compare it with the e-prop model.

        Both start at rest with the current weights; the network's state (and time) is restored
        afterwards.  Shows the size of the modelling gap (:attr:`notes`); none after
        :func:`schedule_like_eprop`.

        Parameters
        ----------
        network : brian2.Network
            The user's Network holding the input, recurrent and synapse objects (Brian2 ties an
            object to the first Network that runs it, so the comparison runs in the user's own).
        target : array_like, optional
            Target of the sequence (only the e-prop losses depend on it).

        Returns
        -------
        dict
            ``brian2_spikes``, ``eprop_spikes`` (counts), ``identical`` (spike trains), ``first_difference``
            (step or None), ``max_v_difference`` (mV, up to the first spike difference).
        """
        import brian2 as b2

        from eprop_plugins import reference

        missing = [o.name for o in [self.inputs, self.recurrent, *self._syn.values()]
                   if o is not None and o not in network.objects]
        if missing:
            raise ParameterError(f"network: does not contain {', '.join(missing)}; pass the Network that runs them")
        T = self.steps_per_sequence
        res = reference.run(self.scenario(1, np.zeros((self.n_out, T)) if target is None else target),
                            record_weight_events=False)
        name = self.population_voltage
        spikes = b2.SpikeMonitor(self.recurrent, name="eprop_compare_spikes")
        state = b2.StateMonitor(self.recurrent, name, record=True, when="end", name="eprop_compare_v")
        network.add(spikes, state)
        network.store("eprop_compare")
        try:
            getattr(self.recurrent, name)[:] = self.population.params["v_rest"] * b2.mV
            network.run(T * self.network["dt"] * b2.ms, namespace=self._namespace)
            z = np.zeros((T, self.n_rec), dtype=np.int8)
            steps = np.round(np.asarray(spikes.t / b2.ms - float(network.t / b2.ms) + T * self.network["dt"])
                             / self.network["dt"]).astype(int)
            z[steps, np.asarray(spikes.i)] = 1
            vb = np.asarray(getattr(state, name) / b2.mV).T
        finally:
            network.restore("eprop_compare")
            network.remove(spikes, state)
        zr = res.traces["z"][:T]
        differ = np.nonzero((z != zr).any(axis=1))[0]
        first = int(differ[0]) if differ.size else None
        upto = T if first is None else first
        return {"brian2_spikes": int(z.sum()), "eprop_spikes": int(zr.sum()), "identical": first is None,
                "first_difference": first,
                "max_v_difference": float(np.max(np.abs(vb[:upto] - res.traces["v"][:upto]), initial=0.0))}

    def write_back(self) -> None:
        """Write the current input and recurrent weights (mV) into the user's Synapses (volt)."""
        import brian2 as b2

        for proj, syn in self._syn.items():
            if syn is None:
                continue
            i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
            syn.variables[self._weight].set_value(self.weights[proj][j, i] * float(b2.mV))
            self._written[proj] = np.asarray(syn.variables[self._weight].get_value()).copy()


def attach_eprop(
    inputs,
    recurrent,
    synapses_in,
    synapses_rec=None,
    *,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    n_out: int = 1,
    readout_weights: Mapping[str, Any] | None = None,
    voltage: str = "v",
    weight: str = "w",
    namespace: Mapping[str, Any] | None = None,
    **deprecated: Any,
) -> EpropAttachment:
    """Attach e-prop learning to an existing Brian2 network.

    Parameters
    ----------
    inputs : brian2.SpikeGeneratorGroup
        Input spikes of one sequence (times in ``[0, sequence - dt)``, multiples of dt), replayed
        every sequence.  A spike at time ``m*dt`` reaches the recurrent neurons in step ``m + 1``.
    recurrent : brian2.NeuronGroup
        The recurrent LIF population: ``dv/dt = (v_rest - v)/tau_m [+ I/C] : volt``, threshold
        ``v > v_th`` (or ``>=``), reset ``v -= v_th - v_rest``, ``refractory`` a whole number of dt.
    synapses_in, synapses_rec : brian2.Synapses
        Input -> recurrent (all-to-all) and recurrent -> recurrent (all pairs ``i != j``) synapses with
        ``w : volt`` and ``on_pre='v_post += w'`` (or ``'v_post += (1 - exp(-dt/tau_m))*w'``,
        TensorFlow form), delay 0.  Without ``synapses_rec`` new plastic recurrent synapses with
        w = 0 are created (``EpropAttachment.new_objects``).
    parameters : mapping of mappings
        Canonical parameters by section (numbers in canonical units or Brian2 quantities), checked
        like a scenario file's (:mod:`eprop_plugins.parameters`):

        * ``network`` (required): ``sequence`` (required, ms or a Brian2 time), ``learning_window``,
          ``feedback``; ``dt`` is the user's clock and ``family`` is 'original';
        * ``readout``, ``optimizer``, ``synapse``: as in a scenario;
        * ``eprop``: the recurrent parameters a Brian2 LIF does not have (``surrogate_gradient_function``,
          ``surrogate_gradient_height``, ``surrogate_gradient_width``, ``c_reg``, ``f_target``).
    n_out : int
        Number of readouts.
    readout_weights : mapping, optional
        ``w_out``: readout weights ``(n_out, n_rec)`` in mV (default ``N(0, 1)/sqrt(n_rec)`` drawn with
        ``seed``); ``w_fb``: feedback weights ``(n_rec, n_out)`` for ``feedback='random'`` (default
        ``N(0, 1)/sqrt(n_rec)``, drawn after ``w_out``); ``seed`` (default 0).
    voltage, weight : str
        Names of the membrane potential and of the synaptic weight.
    namespace : mapping, optional
        External names used in the model strings (as for ``Network.run``); default: the caller's
        locals and globals.
    **deprecated
        The keywords of earlier versions (``network=``, ``readout=``, ``optimizer=``, ``synapse=``,
        ``eprop=``, ``w_out=``, ``w_fb=``, ``seed=``, ``family=``): still accepted, with a
        DeprecationWarning; they fill ``parameters`` and ``readout_weights``.

    Returns
    -------
    EpropAttachment

    Raises
    ------
    IncompatibleModelError
        The Brian2 model is not an e-prop model of the family; the message says what to change.
    ParameterError
        A canonical parameter is unknown, out of range or has the wrong dimensions (the message
        names it as ``section.name``), or a weight matrix has the wrong shape.
    """
    parameters, readout_weights = _from_deprecated_keywords(parameters, readout_weights, deprecated)
    sections = _sections(parameters)
    weights_in = _readout_weight_options(readout_weights)
    if namespace is None:
        from brian2.core.namespace import get_local_namespace

        namespace = get_local_namespace(level=1)
    rec_model = read_recurrent(recurrent, namespace, voltage=voltage, family=FAMILY)
    objects = [inputs, recurrent, synapses_in] + ([synapses_rec] if synapses_rec is not None else [])
    dt = common_dt(objects)
    net = _network_parameters(sections["network"], dt)
    T = par.to_steps(net["sequence"], dt, "network.sequence", allow_zero=False)
    input_steps = read_inputs(inputs, T, dt)

    extra = _canonical("recurrent", sections["eprop"], "eprop")
    for key in extra:
        if key in FROM_MODEL:
            raise ParameterError(
                f"eprop.{key}: read from {type(recurrent).__name__} '{recurrent.name}' (and its Synapses); "
                f"change it in the Brian2 model")
    tau_m = rec_model.params["tau_m"]
    s_in = read_synapses(synapses_in, inputs, recurrent, recurrent=False, voltage=voltage, tau_m=tau_m,
                         namespace=namespace, weight=weight)
    new_objects = []
    if synapses_rec is None and len(recurrent) > 1:
        synapses_rec = _new_recurrent_synapses(recurrent, voltage, weight, tau_m, s_in.regular_spike_arrival)
        new_objects.append(synapses_rec)
    s_rec, w_rec = None, np.zeros((len(recurrent), len(recurrent)))
    if synapses_rec is not None:
        s_rec = read_synapses(synapses_rec, recurrent, recurrent, recurrent=True, voltage=voltage, tau_m=tau_m,
                              namespace=namespace, weight=weight)
        if s_rec.regular_spike_arrival != s_in.regular_spike_arrival:
            raise IncompatibleModelError(
                f"Synapses '{synapses_in.name}' and '{synapses_rec.name}': one adds w, the other "
                f"(1 - exp(-dt/tau_m))*w; e-prop's arrival factor belongs to the neuron (regular_spike_arrival), "
                f"so both projections must use the same form")
        w_rec = s_rec.weights
    params = {**rec_model.params, "regular_spike_arrival": s_in.regular_spike_arrival, **extra}
    params = par.complete("recurrent", params, family=FAMILY, model=rec_model.model,
                          where=f"NeuronGroup '{recurrent.name}'")
    population = Population(rec_model.model, len(recurrent), params)
    # the remaining checks (ranges, w_min <= w_max, readouts for cross-entropy, shapes) are the scenario's
    ro, opt, syn = (par.complete(name, _canonical(name, sections[name], name), family=FAMILY, where=name)
                    for name in ("readout", "optimizer", "synapse"))
    w_out, w_fb = _initial_readout_weights(n_out, len(recurrent), net["feedback"], **weights_in)

    att = EpropAttachment(
        inputs=inputs, recurrent=recurrent, syn_in=synapses_in, syn_rec=synapses_rec, population=population,
        readout=ro, optimizer=opt, synapse=syn, network=net, input_steps=input_steps,
        weights={"in": s_in.weights, "rec": w_rec, "out": w_out, "fb": w_fb}, new_objects=new_objects,
        notes=rec_model.notes + s_in.notes + (s_rec.notes if s_rec is not None else []), weight_name=weight,
        voltage_name=voltage, namespace=namespace,
    )
    att.scenario(1, np.zeros((n_out, T)))  # validate everything now, not at the first train()
    return att


def _new_recurrent_synapses(recurrent, voltage: str, weight: str, tau_m: float, regular_spike_arrival: bool):
    """Plastic recurrent Synapses (all pairs i != j, w = 0) in the arrival form of the input Synapses."""
    import brian2 as b2

    zeta = "" if regular_spike_arrival else "(1 - exp(-dt/tau_m_eprop))*"
    syn = b2.Synapses(recurrent, recurrent, f"{weight} : volt", on_pre=f"{voltage}_post += {zeta}{weight}",
                      name=f"{recurrent.name}_eprop_rec", namespace={"tau_m_eprop": tau_m * b2.ms})
    syn.connect(condition="i != j")
    return syn


def _sections(parameters: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The parameter sections, each a dict (missing ones empty); unknown sections are an error."""
    if parameters is None:
        raise ParameterError("parameters: required, a mapping with at least "
                             "{'network': {'sequence': <length of one sequence>}}")
    if not isinstance(parameters, Mapping):
        raise ParameterError(f"parameters = {parameters!r}: expected a mapping of sections "
                             f"({', '.join(PARAMETER_SECTIONS)})")
    unknown = sorted(set(parameters) - set(PARAMETER_SECTIONS))
    if unknown:
        raise ParameterError(f"parameters.{unknown[0]}: unknown section; valid sections are "
                             f"{', '.join(PARAMETER_SECTIONS)}")
    out = {}
    for name in PARAMETER_SECTIONS:
        section = parameters.get(name) or {}
        if not isinstance(section, Mapping):
            raise ParameterError(f"parameters.{name} = {section!r}: expected a mapping of parameter names to values")
        out[name] = dict(section)
    return out


def _network_parameters(network: dict[str, Any], dt: float) -> dict[str, Any]:
    """The complete network section: the user's, with ``dt`` from the Brian2 clock and the family."""
    net = _canonical("network", network, "network")
    if net.get("family", FAMILY) != FAMILY:
        raise ParameterError(
            f"network.family = {net['family']!r}: brian2_ext runs the 'original' family so far; see "
            f"docs/brian2_attach.rst for the event-family mapping")
    if "dt" in net:
        raise ParameterError(f"network.dt: set by the Brian2 model (dt = {dt} ms), not a parameter of attach_eprop")
    if "sequence" not in net:
        raise ParameterError("network.sequence: required (length of one sequence in ms, e.g. 1000*ms); the input "
                             "pattern and the target are given per sequence")
    return par.complete("network", {**net, "dt": dt, "family": FAMILY}, where="network")


def _readout_weight_options(readout_weights: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(readout_weights or {})
    unknown = sorted(set(options) - set(READOUT_WEIGHT_KEYS))
    if unknown:
        raise ParameterError(f"readout_weights.{unknown[0]}: unknown key; valid keys are {', '.join(READOUT_WEIGHT_KEYS)}")
    return options


def _initial_readout_weights(n_out: Any, n_rec: int, feedback: str, w_out: Any = None, w_fb: Any = None,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Readout weights (mV) and feedback weights: the user's, or ``N(0, 1)/sqrt(n_rec)`` drawn with ``seed``."""
    if not isinstance(n_out, (int, np.integer)) or isinstance(n_out, bool) or n_out < 1:
        raise ParameterError(f"n_out = {n_out!r}: allowed range is integer >= 1")
    rng = np.random.default_rng(seed)
    w_out_default = rng.standard_normal((n_out, n_rec)) / np.sqrt(n_rec)
    w_fb_default = rng.standard_normal((n_rec, n_out)) / np.sqrt(n_rec)
    w_out = w_out_default if w_out is None else np.asarray(quantity_to_canonical(w_out, "mV", "w_out"), dtype=float)
    if w_fb is None:
        w_fb = w_fb_default if feedback == "random" else np.asarray(w_out).T.copy()
    w_fb = np.asarray(quantity_to_canonical(w_fb, "1", "w_fb"), dtype=float)
    # the scenario checks the shapes against its sizes, which come from these matrices: check n_out here
    for name, arr, shape in (("w_out", w_out, (n_out, n_rec)), ("w_fb", w_fb, (n_rec, n_out))):
        if arr.shape != shape:
            raise ParameterError(f"{name}: shape {arr.shape}, expected shape {shape} [post, pre] (n_out = {n_out})")
    return w_out, w_fb




def _from_deprecated_keywords(parameters, readout_weights, old: dict[str, Any]):
    """``parameters`` and ``readout_weights`` completed from the keywords of earlier versions."""
    if not old:
        return parameters, readout_weights
    unknown = sorted(set(old) - set(PARAMETER_SECTIONS) - set(READOUT_WEIGHT_KEYS) - {"family"})
    if unknown:
        raise TypeError(f"attach_eprop() got an unexpected keyword argument {unknown[0]!r}")
    warnings.warn("attach_eprop(network=..., readout=..., optimizer=..., synapse=..., eprop=..., w_out=..., w_fb=..., "
                  "seed=..., family=...) is deprecated: pass parameters={'network': {...}, 'readout': {...}, ...} and "
                  "readout_weights={'w_out': ..., 'w_fb': ..., 'seed': ...}", DeprecationWarning, stacklevel=3)
    sections = {k: old[k] for k in PARAMETER_SECTIONS if k in old}
    weights = {k: old[k] for k in READOUT_WEIGHT_KEYS if k in old}
    if sections and parameters is not None:
        raise ParameterError(f"{next(iter(sections))}: given both as a keyword and in parameters=; use parameters= only")
    if weights and readout_weights is not None:
        raise ParameterError(f"{next(iter(weights))}: given both as a keyword and in readout_weights=; "
                             f"use readout_weights= only")
    if "family" in old:
        sections["network"] = {**dict(sections.get("network") or {}), "family": old["family"]}
    return (parameters if not sections else sections), (readout_weights if not weights else weights)
