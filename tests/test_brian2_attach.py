"""e-prop attached to a user's Brian2 model (brian2_ext.attach): the example's plain Brian2 LIF network
trains to exactly the NumPy reference of the equivalent scenario (and NEST's published sine losses),
and unsupported models or bad parameters fail with messages that say what to change.

Real Brian2 throughout; simulations use the numpy target (no compilation: CI budget)."""

from __future__ import annotations

import runpy
from pathlib import Path

import brian2 as b2
import numpy as np
import pytest
from brian2 import Hz, NeuronGroup, PoissonGroup, SpikeGeneratorGroup, Synapses, mV, ms, nA, Mohm

from brian2_ext import IncompatibleModelError, attach_eprop
from eprop_plugins import reference, reference_numbers as rn, tasks
from eprop_plugins.parameters import ParameterError

RTOL = 1e-10
b2.BrianLogger.suppress_name("unused_brian_object")  # the error tests build groups they never run
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "brian2_existing_model.py"


pytestmark = pytest.mark.usefixtures("numpy_target")


@pytest.fixture(scope="module")
def example():
    return runpy.run_path(str(EXAMPLE))  # the module's functions, without running main


@pytest.fixture(scope="module")
def trained(example):
    """The example trained for 3 iterations (numpy target), and the reference of NEST's sine task."""
    model, att, res, forward = example["main"](3, "numpy")
    return model, att, res, reference.run(tasks.sine("original", 3), record_weight_events=False), forward


def _rel(got, want):
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))


def test_example_losses_equal_reference_and_nest(trained):
    _, _, res, ref, _ = trained
    np.testing.assert_allclose(res.losses, ref.losses, rtol=RTOL, atol=0)
    np.testing.assert_allclose(res.losses, rn.SINE_ORIGINAL_NEST[:3], rtol=1e-8, atol=0)
    assert np.array_equal(res.traces["z"], ref.traces["z"]), "spike trains differ"
    for name in ("v", "psi", "learning_signal", "y", "error"):
        assert _rel(res.traces[name], ref.traces[name]) <= RTOL, name
    for name in ("w_in", "w_rec", "w_out"):
        assert _rel(res.weights[name], ref.weights[name]) <= RTOL, name


def test_equivalent_scenario_is_nest_sine_task(example):
    model = example["build_model"]()
    att = example["attach"](model)
    sc, want = att.scenario(2, model["data"].target[:, :1000]), tasks.sine("original", 2)
    for name in ("w_in", "w_rec", "w_out", "w_fb"):
        # Brian2 stores W*mV in volts: reading back W can be one ulp off
        np.testing.assert_allclose(getattr(sc, name), getattr(want, name), rtol=3e-16, atol=0)
    assert all(np.array_equal(a, b) for a, b in zip(sc.input_spikes, want.input_spikes))
    assert np.array_equal(sc.target, want.target)
    keys = ("tau_m", "v_rest", "v_thresh", "tau_refrac", "i_offset", "surrogate_gradient_height",
            "surrogate_gradient_width", "c_reg", "f_target", "regular_spike_arrival")
    assert {k: sc.populations[0].params[k] for k in keys} == {k: want.populations[0].params[k] for k in keys}
    assert any("one step later" in n for n in att.notes)


def test_write_back_and_continued_training(trained, example):
    model, att, res, ref, _ = trained
    for syn, key in ((model["s_in"], "w_in"), (model["s_rec"], "w_rec")):
        want = res.weights[key][-1][syn.j[:], syn.i[:]]
        np.testing.assert_allclose(np.asarray(syn.w[:] / mV), want, rtol=1e-15, atol=1e-18)
    # a fresh attachment trained 2 + 1 iterations equals 3 iterations in one go (gradient descent: no state)
    m2 = example["build_model"]()
    att2 = example["attach"](m2)
    target = m2["data"].target[:, :1000]
    att2.train(2, target, mode="numpy", record=False)
    att2.train(1, target, mode="numpy", record=False)
    np.testing.assert_allclose(att2.losses, ref.losses, rtol=RTOL, atol=0)


def test_user_network_simulated_by_brian2_equals_eprop_after_scheduling(trained):
    """Brian2's own run of the user's objects: the default schedule differs, schedule_like_eprop() does not."""
    _, att, _, _, (gap, same) = trained
    assert not gap["identical"] and gap["first_difference"] < 20
    assert same["identical"] and same["brian2_spikes"] == same["eprop_spikes"] > 1000
    assert same["max_v_difference"] <= 1e-14  # mV; the synaptic sum is added in another order
    assert sum("schedule_like_eprop" in n for n in att.notes) == 3  # the reset and both Synapses were flagged


# ---------------------------------------------------------------------------------------------- errors
def _model(eqs="dv/dt = -v/tau : volt", threshold="v > v_th", reset="v -= v_th", refractory=0 * ms,
           on_pre="v_post += w", delay=0 * ms, rec_condition="i != j", method="exact", times=None, n=4):
    b2.defaultclock.dt = 1 * ms
    ns = {"tau": 20 * ms, "v_th": 1 * mV}
    rec = NeuronGroup(n, eqs, threshold=threshold, reset=reset, refractory=refractory, method=method,
                      namespace=ns, name="rec")
    inp = SpikeGeneratorGroup(3, [0, 1, 2], (times if times is not None else [1, 5, 9]) * ms, name="inp")
    s_in = Synapses(inp, rec, "w : volt", on_pre=on_pre, delay=delay, namespace=ns, name="s_in")
    s_in.connect()
    s_in.w = 0.5 * mV
    s_rec = Synapses(rec, rec, "w : volt", on_pre=on_pre, namespace=ns, name="s_rec")
    s_rec.connect(condition=rec_condition)
    return inp, rec, s_in, s_rec


def _attach(parts, parameters=None, **kw):
    parameters = {"network": {"sequence": 100 * ms}} if parameters is None else parameters
    return attach_eprop(*parts, parameters=parameters, namespace={}, **kw)


SEQ = {"network": {"sequence": 100 * ms}}


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": "v > v_th and v > 0*mV"}, "threshold 'v > v_th and v > 0\\*mV' must compare v with the threshold"),
    ({"threshold": "v > 2*mV"}, "subtracts 1.0 mV; e-prop subtracts the threshold above rest, v_thresh - v_rest = 2.0 mV"),
    ({"reset": "v = 0*mV"}, "is a hard reset; the original e-prop family subtracts the threshold one step later: "
                            "use reset='v -= v_th'"),
    ({"refractory": 2 * ms, "eqs": "dv/dt = -v/tau : volt (unless refractory)"},
     "'\\(unless refractory\\)' freezes v .* keeps integrating v while refractory"),
    ({"refractory": 1.5 * ms}, "not a whole number of dt"),
    ({"refractory": "v > 0*mV"}, "refractory='v > 0\\*mV' is an expression"),
    ({"delay": 1 * ms}, "Synapses 's_in': delay 1. ms; .* set delay=0\\*ms"),
    ({"on_pre": "v_post += 0.5*w"}, "adds 0.5\\*w; e-prop adds w .* or \\(1 - exp\\(-dt/tau_m\\)\\)\\*w"),
    ({"on_pre": "v_post += w\nw += 0*mV"}, "is not an e-prop delta synapse"),
    ({"rec_condition": "i != j and j < 2"}, "Synapses 's_rec': 6 of 12 pairs are not connected"),
    ({"rec_condition": None}, "has autapses"),
    ({"eqs": "dv/dt = (ge - v)/tau : volt\ndge/dt = -ge/tau : volt"}, "depends on the state variable\\(s\\) ge"),
    ({"method": "euler"}, "method='euler' does not integrate the leak exactly"),
    ({"times": [1, 5, 99]}, "input 2 spikes at t = 99.0 ms, the last step of the sequence"),
    ({"times": [1, 5, 150]}, "spikes at t >= 100.0 ms"),
])
def test_unsupported_models_are_explained(kwargs, message):
    with pytest.raises(IncompatibleModelError, match=message):
        _attach(_model(**kwargs))


def test_other_unsupported_inputs_and_groups():
    inp, rec, s_in, s_rec = _model()
    poisson = PoissonGroup(3, 10 * Hz, name="poisson")
    with pytest.raises(IncompatibleModelError, match="PoissonGroup 'poisson' is not supported.*SpikeGeneratorGroup"):
        attach_eprop(poisson, rec, s_in, s_rec, parameters=SEQ, namespace={})
    with pytest.raises(IncompatibleModelError, match="must connect 'inp' -> 'rec'"):
        attach_eprop(inp, rec, s_rec, s_rec, parameters=SEQ, namespace={})
    b2.defaultclock.dt = 1 * ms
    tau_varies = NeuronGroup(4, "dv/dt = -v/tau : volt\ntau : second (constant)", threshold="v > 1*mV",
                             reset="v -= 1*mV", method="exact", name="rec2")
    tau_varies.tau = [10, 20, 20, 20] * ms
    s2 = Synapses(inp, tau_varies, "w : volt", on_pre="v_post += w", name="s_in2")
    s2.connect()
    with pytest.raises(IncompatibleModelError, match="'tau' in 'tau' differs across neurons"):
        attach_eprop(inp, tau_varies, s2, parameters=SEQ, namespace={})


@pytest.mark.parametrize("kwargs, error, message", [
    ({"parameters": {**SEQ, "readout": {"tau_m": 30 * mV}}}, ParameterError,
     "readout.tau_m = 30. mV: expected a quantity in ms \\(dimensions s\\), got dimensions V"),
    ({"parameters": {**SEQ, "optimizer": {"eta": -1.0}}}, ParameterError, "optimizer.eta = -1.0: allowed range is >= 0"),
    ({"parameters": {**SEQ, "eprop": {"tau_m": 10 * ms}}}, ParameterError, "eprop.tau_m: read from NeuronGroup 'rec'"),
    ({"parameters": {**SEQ, "eprop": {"c_reg": -1.0}}}, ParameterError,
     "NeuronGroup 'rec'.c_reg = -1.0: allowed range is >= 0"),
    ({"parameters": {**SEQ, "eprop": {"surrogate": "x"}}}, ParameterError, "unknown parameter; valid names are"),
    ({"parameters": {**SEQ, "eprop": {"f_target": 10 * ms}}}, ParameterError,
     "eprop.f_target = 10. ms: expected a quantity in Hz"),
    ({"parameters": {"network": {"learning_window": 10 * ms}}}, ParameterError, "network.sequence: required"),
    ({"parameters": {"network": {"sequence": 100 * ms, "dt": 0.1}}}, ParameterError,
     "network.dt: set by the Brian2 model"),
    ({"parameters": {"network": {"sequence": 100.5 * ms}}}, ParameterError, "network.sequence = 100.5 ms: must be a positive whole"),
    ({"n_out": 1, "parameters": {**SEQ, "readout": {"loss": "cross_entropy"}}}, ParameterError,
     "n_out = 1: cross_entropy needs at least 2 readouts"),
    ({"readout_weights": {"w_out": np.zeros((2, 4))}}, ParameterError, "w_out: shape \\(2, 4\\), expected .* \\(1, 4\\)"),
    ({"parameters": {"network": {"sequence": 100 * ms, "family": "event"}}}, ParameterError,
     "network.family = 'event': brian2_ext runs the 'original' family so far"),
    # the scenario's own checks, reached through the attachment
    ({"parameters": {**SEQ, "optimizer": {"w_min": 1.0, "w_max": -1.0}}}, ParameterError,
     "optimizer.w_min = 1.0 mV: allowed range is <= w_max"),
    ({"parameters": {**SEQ, "readouts": {}}}, ParameterError, "parameters.readouts: unknown section; valid sections"),
    ({"parameters": {**SEQ, "optimizer": 0.1}}, ParameterError, "parameters.optimizer = 0.1: expected a mapping"),
    ({"readout_weights": {"w_in": np.zeros((1, 4))}}, ParameterError, "readout_weights.w_in: unknown key"),
    ({"n_out": 0}, ParameterError, "n_out = 0: allowed range is integer >= 1"),
])
def test_bad_parameters_name_the_parameter(kwargs, error, message):
    with pytest.raises(error, match=message):
        _attach(_model(), **kwargs)


def test_parameters_are_required():
    with pytest.raises(ParameterError, match="parameters: required"):
        attach_eprop(*_model(), namespace={})


def test_keywords_of_earlier_versions_still_work():
    """network=, readout=, ..., w_out=, family= fill parameters= and readout_weights= (with a warning)."""
    parts = _model()
    with pytest.warns(DeprecationWarning, match="parameters="):
        old = attach_eprop(*parts, network={"sequence": 100 * ms}, optimizer={"eta": 0.5}, eprop={"c_reg": 2.0},
                           w_out=np.ones((1, 4)), seed=3, namespace={})
    new = attach_eprop(*parts, parameters={"network": {"sequence": 100 * ms}, "optimizer": {"eta": 0.5},
                                           "eprop": {"c_reg": 2.0}},
                       readout_weights={"w_out": np.ones((1, 4)), "seed": 3}, namespace={})
    assert old.optimizer == new.optimizer and old.population.params == new.population.params
    for proj in ("in", "rec", "out", "fb"):
        np.testing.assert_array_equal(old.weights[proj], new.weights[proj])
    with pytest.warns(DeprecationWarning), pytest.raises(ParameterError, match="family = 'event'"):
        attach_eprop(*parts, network={"sequence": 100 * ms}, family="event", namespace={})
    with pytest.warns(DeprecationWarning), pytest.raises(ParameterError, match="network: given both"):
        attach_eprop(*parts, parameters=SEQ, network={"sequence": 100 * ms}, namespace={})
    with pytest.raises(TypeError, match="unexpected keyword argument 'netwrok'"):
        attach_eprop(*parts, netwrok={"sequence": 100 * ms}, namespace={})


def test_target_shape_is_checked():
    att = _attach(_model())
    with pytest.raises(ParameterError, match="target: shape \\(1, 50\\); expected \\(1, 100\\)"):
        att.scenario(1, np.zeros((1, 50)))


def test_parameters_read_from_a_model_with_rest_current_and_refractoriness():
    b2.defaultclock.dt = 1 * ms
    ns = {"E_L": -70 * mV, "R": 100 * Mohm, "tau": 25 * ms, "V_th": -55 * mV}
    rec = NeuronGroup(3, "dv/dt = (E_L - v + R*I)/tau : volt\nI : amp (constant)", threshold="v >= V_th",
                      reset="v = v - (V_th - E_L)", refractory=3 * ms, method="exact", namespace=ns, name="rec")
    rec.I = 0.02 * nA
    inp = SpikeGeneratorGroup(2, [0, 1], [2, 3] * ms, name="inp")
    s_in = Synapses(inp, rec, "w : volt", on_pre="v_post += w", name="s_in")
    s_in.connect()
    s_in.w = "(i + 1)*j*0.25*mV"
    att = attach_eprop(inp, rec, s_in, None, namespace={},
                       parameters={"network": {"sequence": 10 * ms},
                                   "eprop": {"surrogate_gradient_function": "exponential"}})
    p = att.population.params
    assert (p["tau_m"], p["v_rest"], p["v_thresh"], p["tau_refrac"]) == (25.0, -70.0, -55.0, 3.0)
    assert np.isclose(p["i_offset"], 0.02, rtol=1e-14) and np.isclose(p["cm"], 0.25, rtol=1e-14)  # tau/R = 0.25 nF
    assert p["regular_spike_arrival"] is True and p["surrogate_gradient_function"] == "exponential"
    np.testing.assert_allclose(att.weights["in"], [[0, 0], [0.25, 0.5], [0.5, 1.0]], rtol=1e-15)
    # no recurrent Synapses given: plastic ones are created (all pairs i != j, w = 0) for the user's Network
    (s_rec,) = att.new_objects
    assert len(s_rec) == 6 and np.all(np.asarray(s_rec.w[:]) == 0.0)
    sc = att.scenario(2, np.zeros(10))
    assert [list(s) for s in sc.input_spikes] == [[3, 13], [4, 14]]  # emitted at m, arrive at m + 1, replayed


@pytest.mark.slow
def test_training_in_cpp_standalone_equals_reference(example):
    """mode='standalone': the online learner's objects rebuilt and compiled (about 2 min on 2 shared cores)."""
    model = example["build_model"]()
    att = example["attach"](model)
    res = att.train(2, model["data"].target[:, :1000], mode="standalone")
    ref = reference.run(tasks.sine("original", 2), record_weight_events=False)
    np.testing.assert_allclose(res.losses, ref.losses, rtol=RTOL, atol=0)
    assert np.array_equal(res.traces["z"], ref.traces["z"])
    for name in ("w_in", "w_rec", "w_out"):
        assert _rel(res.weights[name], ref.weights[name]) <= RTOL, name


# ---------------------------------------------------------------------------------------------- scenarios the
# canonical model has beyond NEST's sine task, trained in runtime mode (Cython) against the reference
def _sine_variant(eqs="dv/dt = -v/tau : volt (unless refractory)", current=None, n_in=20, n_rec=10):
    """NEST's sine task on a smaller network (the first inputs and neurons of its draws), as a user writes it."""
    data = tasks.sine("original", iterations=1)
    b2.defaultclock.dt = 1 * ms
    ns = {"tau": 30 * ms, "v_th": 0.03 * mV, "R": 100 * Mohm}
    rec = NeuronGroup(n_rec, eqs, threshold="v > v_th", reset="v -= v_th", refractory=0 * ms, method="exact",
                      namespace=ns, name="rec")
    if current is not None:
        rec.I = current
    spikes = data.input_spikes[:n_in]
    idx = np.concatenate([np.full(len(s), i) for i, s in enumerate(spikes)])
    inp = SpikeGeneratorGroup(n_in, idx, np.concatenate([np.asarray(s) - 1 for s in spikes]) * ms, name="inp")
    on_pre = "v_post += (1 - exp(-dt/tau))*w"
    s_in = Synapses(inp, rec, "w : volt", on_pre=on_pre, namespace=ns, name="s_in")
    s_in.connect()
    s_in.w = data.w_in[s_in.j[:], s_in.i[:]] * 3 * mV
    s_rec = Synapses(rec, rec, "w : volt", on_pre=on_pre, namespace=ns, name="s_rec")
    s_rec.connect(condition="i != j")
    s_rec.w = data.w_rec[s_rec.j[:], s_rec.i[:]] * mV
    return (inp, rec, s_in, s_rec), data.target[:, :1000]


def _sine_parameters(**optimizer):
    return {"network": {"sequence": 1000 * ms, "feedback": "random"},
            "readout": {"tau_m": 30 * ms, "v_rest": 0 * mV, "regular_spike_arrival": False},
            "optimizer": {"type": "gradient_descent", "eta": 1e-3, **optimizer},
            "synapse": {"tau_m_readout": 30 * ms},
            "eprop": {"surrogate_gradient_height": 10.0, "surrogate_gradient_width": 0.03, "c_reg": 300.0,
                      "f_target": 10 * Hz}}


def _assert_equals_reference(res, ref, sc):
    np.testing.assert_allclose(res.losses, ref.losses, rtol=RTOL, atol=0)
    assert np.array_equal(res.traces["z"], ref.traces["z"]), "spike trains differ"
    assert ref.traces["z"].sum() > 50
    for name in ("v", "psi", "learning_signal", "y", "error"):
        assert _rel(res.traces[name], ref.traces[name]) <= RTOL, name
    for name in ("w_in", "w_rec", "w_out"):
        assert _rel(res.weights[name], ref.weights[name]) <= RTOL, name
        # the learned changes themselves (small next to the weights) agree as well
        w0 = np.asarray(getattr(sc, name))
        assert np.any(ref.weights[name][-1] != w0), name
        assert _rel(res.weights[name] - w0, ref.weights[name] - w0) <= RTOL, name


def test_constant_current_i_offset_trains_as_the_reference():
    """i_offset (dv/dt = (-v + R*I)/tau, I constant): the first step of an interval holds P_i I_e (Cython)."""
    parts, target = _sine_variant("dv/dt = (-v + R*I)/tau : volt (unless refractory)\nI : amp (constant)",
                                  current=0.0002 * nA)
    att = _attach(parts, _sine_parameters())
    sc = att.scenario(3, target)
    assert np.isclose(sc.populations[0].params["i_offset"], 0.0002, rtol=1e-12)
    ref = reference.run(sc, record_weight_events=False)
    _assert_equals_reference(att.train(3, target, mode="cython"), ref, sc)


def test_lower_bound_v_min_trains_as_the_reference():
    """eprop.v_min: v clamped after the reset and the arrivals (no gradient through it), as the reference."""
    parts, target = _sine_variant()
    params = _sine_parameters()
    params["eprop"] = {**params["eprop"], "v_min": -0.06 * mV}  # the clamp holds v in about 6 % of the steps
    att = _attach(parts, params)
    sc = att.scenario(3, target)
    assert sc.populations[0].params["v_min"] == pytest.approx(-0.06, rel=1e-12)
    ref = reference.run(sc, record_weight_events=False)
    assert np.mean(ref.traces["v"] == -0.06) > 0.03
    _assert_equals_reference(att.train(3, target, mode="cython"), ref, sc)


@pytest.mark.parametrize("optimizer", [{"batch_size": 2}, {"batch_size": 3, "type": "adam", "eta": 1e-4}])
def test_batches_of_intervals_train_as_the_reference(optimizer):
    """optimizer.batch_size > 1: the mean gradient of B consecutive intervals applied once (docs/model.rst §4)."""
    parts, target = _sine_variant()
    att = _attach(parts, _sine_parameters(**optimizer))
    sc = att.scenario(2, target)
    assert sc.n_sequences == 2 * optimizer["batch_size"]
    ref = reference.run(sc, record_weight_events=False)
    _assert_equals_reference(att.train(2, target, mode="cython"), ref, sc)


def test_cross_entropy_readouts_train_as_the_reference():
    """readout.loss = 'cross_entropy' with 3 readouts: softmax error pi - pi* (docs/model.rst §2), in Cython."""
    parts, _ = _sine_variant()
    params = _sine_parameters()
    params["readout"] = {**params["readout"], "loss": "cross_entropy"}
    att = _attach(parts, params, n_out=3)
    classes = [0, 2, 1]
    target = np.repeat(np.eye(3)[classes].T, 1000, axis=1)  # one class per sequence
    sc = att.scenario(3, target)
    ref = reference.run(sc, record_weight_events=False)
    assert np.all(np.abs(ref.traces["y"].sum(axis=1) - 1) < 1e-14)
    _assert_equals_reference(att.train(3, target, mode="cython"), ref, sc)


def test_readout_current_and_lower_bound_train_as_the_reference():
    """readout.i_offset (y relaxes to i_offset tau_m / C_m) and readout.v_min (clamp before the error), in Cython."""
    parts, target = _sine_variant()
    params = _sine_parameters()
    params["readout"] = {**params["readout"], "i_offset": 0.002 * nA, "v_min": 0.18 * mV}
    att = _attach(parts, params)
    sc = att.scenario(3, target)
    ref = reference.run(sc, record_weight_events=False)
    assert np.mean(ref.traces["readout_v"] == 0.18) > 0.01  # the clamp holds y in 1.6 % of the steps
    _assert_equals_reference(att.train(3, target, mode="cython"), ref, sc)


@pytest.mark.slow
def test_canonical_settings_in_cpp_standalone_equal_reference():
    """i_offset, v_min, batch 2, cross-entropy and the readout constants at once, rebuilt in cpp_standalone."""
    import copy

    from brian2_ext.attach_training import train_online

    parts, _ = _sine_variant("dv/dt = (-v + R*I)/tau : volt (unless refractory)\nI : amp (constant)",
                             current=0.0002 * nA)
    params = _sine_parameters(batch_size=2)
    params["readout"] = {**params["readout"], "loss": "cross_entropy", "i_offset": 0.002 * nA, "v_min": 0.18 * mV}
    att = _attach(parts, params, n_out=3)
    target = np.repeat(np.eye(3)[[0, 2, 1, 0]].T, 1000, axis=1)
    sc = copy.deepcopy(att.scenario(2, target))
    sc.populations[0].params["v_min"] = -0.06
    ref = reference.run(sc, record_weight_events=False)
    _assert_equals_reference(train_online(att, sc, mode="standalone"), ref, sc)
