"""Bad input of every kind is refused before any simulator runs, with an error that names the field.

Four doors lead into the project: scenario files (``eprop run FILE`` and :func:`eprop_plugins.load`),
the ``eprop`` command line, the canonical parameter tables (:mod:`eprop_plugins.parameters`) and
the attach APIs (:func:`brian2_ext.attach_eprop`, :func:`nest_models.pynest.add_eprop`).  Each case
asserts the error type and the named field (a dotted path such as ``populations[0].params.tau_m``
or an index such as ``input_spikes[3][7]``); the command line prints it as one line
``eprop: error: ...`` with exit status 2 and no traceback.

The cases listed in issue 8 (a non-finite target, a fractional spike step, an unknown top-level
key, a missing ``w_out``, a missing file, a ragged weight matrix, ``size: "100"``, a batch size
that does not divide an iteration, initial weights outside ``[w_min, w_max]``) are run through
``eprop run`` as a subprocess.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import ParameterError, Scenario, backends, load, parameters, reference
from eprop_plugins.cli import main

SCENARIOS = Path(__file__).resolve().parents[1] / "validation" / "scenarios"
BASE = "orig-rec-mse-gd"  # a small original-family scenario: 3 sequences, several neurons and inputs
EVENT = "event-rec-mse-gd"


def _data(name: str = BASE) -> dict:
    return json.loads((SCENARIOS / f"{name}.json").read_text())


def _refused(data: dict, field: str) -> str:
    """``Scenario.from_dict(data)`` raises a ParameterError whose message starts with ``field``."""
    with pytest.raises(ParameterError) as info:
        Scenario.from_dict(data)
    message = str(info.value)
    assert message.startswith(field), (field, message)
    return message


def _eprop(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EPROP_DEBUG"}
    return subprocess.run([sys.executable, "-m", "eprop_plugins.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eprop: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ----------------------------------------------------------------- the cases of issue 8, through `eprop run`
def _inf_target(d):
    d["target"][0][17] = float("inf")


def _fractional_step(d):
    d["input_spikes"][3][2] = d["input_spikes"][3][2] + 0.5


def _typo_key(d):
    d["w_typo"] = d.pop("w_in")


def _missing_w_out(d):
    del d["w_out"]


def _ragged(d):
    d["w_rec"][4] = d["w_rec"][4][:-1]


def _string_size(d):
    d["populations"][0]["size"] = str(d["populations"][0]["size"])


def _batch_not_dividing(d):
    d["n_sequences"], d["iteration_sequences"], d["optimizer"]["batch_size"] = 3, 3, 2


def _weight_outside_bounds(d):
    d["optimizer"]["w_min"], d["optimizer"]["w_max"] = -20.0, 20.0
    d["w_in"][2][1] = 25.0


ISSUE_CASES = [
    (_inf_target, "target[0][17] = inf", "finite"),
    (_fractional_step, "input_spikes[3][2] = ", "whole time steps"),
    (_typo_key, "w_typo: unknown key", "allowed keys are"),
    (_missing_w_out, "w_out: missing", "required"),
    (_ragged, "w_rec[4]: ", "expected"),
    (_string_size, "populations[0].size = '", "integer >= 1"),
    (_batch_not_dividing, "optimizer.batch_size = 2", "divide"),
    (_weight_outside_bounds, "w_in[2][1] = 25.0 mV", "-20.0 <= w <= 20.0"),
]


@pytest.mark.parametrize("change, field, allowed", ISSUE_CASES, ids=[c[0].__name__ for c in ISSUE_CASES])
def test_issue_cases_through_eprop_run(tmp_path, change, field, allowed):
    d = _data()
    change(d)
    (tmp_path / "bad.json").write_text(json.dumps(d))
    proc = _eprop("run", "bad.json", "--out", "out", cwd=tmp_path)
    line = _one_line_error(proc, field, allowed)
    assert not (tmp_path / "out").exists(), line  # refused before anything ran or was written


def test_missing_file_through_eprop_run(tmp_path):
    _one_line_error(_eprop("run", "nowhere.json", cwd=tmp_path), "scenario file 'nowhere.json'", "no such file")


def test_debug_variable_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "eprop_plugins.cli", "run", "nowhere.json"], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "EPROP_DEBUG": "1"}, timeout=300)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ParameterError" in proc.stderr


def test_wmax_below_one_mv_is_a_valid_scenario():
    """Issue 8's ``Wmax`` case: ``w_max`` below 1 mV with weights inside the bounds is accepted and runs,
    on NEST as on the reference."""
    d = _data(EVENT)
    d["optimizer"]["w_min"], d["optimizer"]["w_max"] = -0.8, 0.8
    for key in ("w_in", "w_rec", "w_out"):
        d[key] = np.clip(np.array(d[key]), -0.8, 0.8).tolist()
    sc = Scenario.from_dict(d)
    assert sc.optimizer["w_max"] == 0.8
    res = reference.run(sc, record_weight_events=False)
    assert np.all(np.isfinite(res.losses)) and np.max(res.weights["w_out"]) <= 0.8
    # NEST checks its synapse model's default weight (1.0) against Wmax: the backend must translate
    nest = backends.run("nest-builtin", sc)
    np.testing.assert_allclose(nest.losses, res.losses, rtol=1e-10, atol=0)


# ----------------------------------------------------------------- scenario format, in-process
def test_unknown_key_in_a_population():
    d = _data()
    d["populations"][0]["sizes"] = 4
    _refused(d, "populations[0].sizes: unknown key")


def test_unknown_key_in_the_optimizer():
    d = _data()
    d["optimizer"]["w_typo"] = 1.0
    _refused(d, "optimizer.w_typo: unknown parameter")


def test_unknown_key_in_the_network():
    d = _data()
    d["network"]["sequnce"] = 100.0
    _refused(d, "network.sequnce: unknown parameter")


def test_unknown_recurrent_parameter():
    d = _data()
    d["populations"][0]["params"]["tau_mem"] = 20.0
    _refused(d, "populations[0].params.tau_mem: unknown parameter")


def test_missing_population_model():
    d = _data()
    del d["populations"][0]["model"]
    _refused(d, "populations[0].model: missing")


def test_bool_is_not_an_integer():
    d = _data()
    d["n_out"] = True
    _refused(d, "n_out = True: allowed range is integer >= 1")


def test_fractional_population_size():
    d = _data()
    d["populations"][0]["size"] = 2.5
    _refused(d, "populations[0].size = 2.5")


def test_string_parameter_value():
    d = _data()
    d["populations"][0]["params"]["tau_m"] = "20"
    _refused(d, "populations[0].params.tau_m = '20' ms: allowed range is > 0")


def test_sequences_not_a_multiple_of_the_iteration():
    d = _data()
    d["n_sequences"], d["iteration_sequences"], d["optimizer"]["batch_size"] = 3, 2, 1
    _refused(d, "n_sequences = 3: allowed values are multiples of iteration_sequences (2)")


def test_event_batch_not_dividing_the_steps():
    d = _data(EVENT)
    d["optimizer"]["batch_size"] = 7  # 150 steps per iteration
    _refused(d, "optimizer.batch_size = 7: allowed values divide the 150 time steps")


def test_unsupported_format():
    d = _data()
    d["format"] = "eprop-scenario/99"
    _refused(d, "format = 'eprop-scenario/99'")


def test_top_level_not_an_object():
    _refused([1, 2, 3], "scenario = [1, 2, 3]: allowed values are an object")


def test_nan_weight():
    d = _data()
    d["w_out"][0][3] = float("nan")
    _refused(d, "w_out[0][3] = nan mV: allowed range is finite")


def test_string_weight():
    d = _data()
    d["w_in"][1][0] = "0.1"
    _refused(d, "w_in[1][0] = '0.1': allowed values are numbers")


def test_weight_matrix_shape():
    d = _data()
    d["w_in"] = [row[:-1] for row in d["w_in"]]
    _refused(d, "w_in: shape")


def test_autapse():
    d = _data()
    d["w_rec"][2][2] = 0.1
    _refused(d, "w_rec[2][2] = 0.1 mV: autapses are not supported")


def test_missing_feedback_weights_for_random_feedback():
    d = _data()
    d["w_fb"] = None
    _refused(d, "w_fb: missing; it is required when network.feedback = 'random'")


def test_spike_step_outside_the_run():
    d = _data()
    d["input_spikes"][0].append(10 ** 6)
    _refused(d, "input_spikes[0][")


def test_negative_spike_step():
    d = _data(EVENT)
    d["input_spikes"][1].insert(0, -3)
    _refused(d, "input_spikes[1][0] = -3: allowed range is 0 <= step")


def test_spike_steps_not_increasing():
    d = _data()
    train = d["input_spikes"][2]
    train.insert(1, train[0])
    _refused(d, "input_spikes[2][1] = ")


def test_spike_in_the_first_step_of_a_sequence():
    d = _data()
    d["input_spikes"][0] = [150] + [s for s in d["input_spikes"][0] if s > 150]
    _refused(d, "input_spikes[0][0] = 150: a spike arrives in the first step of a sequence")


def test_wrong_number_of_spike_trains():
    d = _data()
    d["input_spikes"].pop()
    _refused(d, "input_spikes: ")


def test_target_too_short():
    d = _data()
    d["target"] = [row[:100] for row in d["target"]]
    _refused(d, "target: 100 steps is shorter than the 450 simulated steps")


def test_learning_window_signal_in_the_original_family():
    d = _data()
    d["learning_window_signal"] = [1.0] * 450
    _refused(d, "learning_window_signal: only the event family")


def test_record_synapse_that_does_not_exist():
    d = _data()
    d["record_synapses"] = [["rec", 0, 99]]
    _refused(d, "record_synapses[0] = ['rec', 0, 99]: post allowed range")


def test_record_synapse_of_an_unknown_projection():
    d = _data()
    d["record_synapses"] = [["fb", 0, 1]]
    _refused(d, "record_synapses[0] = ['fb', 0, 1]: projection allowed values are in, rec, out")


def test_unknown_family():
    d = _data()
    d["network"]["family"] = "orignal"
    _refused(d, "network.family = 'orignal': allowed range is one of original, event")


def test_refractory_period_not_a_whole_number_of_steps():
    d = _data()
    d["populations"][0]["params"]["tau_refrac"] = 1.5
    _refused(d, "populations[0].params.tau_refrac = 1.5 ms: must be a non-negative whole number of dt")


def test_float32_weights_that_are_not_float32():
    d = _data("task-sine-original")
    d["w_in"][0][0] = 0.1
    _refused(d, "w_in[0][0] = 0.1: float32_weights is set")


def test_negative_tolerance():
    d = _data()
    d["tolerance"]["rtol"] = -1.0
    _refused(d, "tolerance.rtol = -1.0")


def test_cross_entropy_with_one_readout():
    d = _data("orig-lif-single")
    d["readout"]["loss"] = "cross_entropy"
    _refused(d, "n_out = 1: cross_entropy needs at least 2 readouts")


def test_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n "n_in": }')
    with pytest.raises(ParameterError, match=r"scenario file '.*broken\.json': not valid JSON: .* line 2, column 10"):
        load(path)


def test_python_scenario_objects_get_the_same_checks():
    """Scenarios built in Python go through the same rules as files (no silent conversion)."""
    sc = Scenario.from_dict(_data())
    bad = copy.deepcopy(sc)
    bad.input_spikes[1] = np.array([5.5, 10.0])
    with pytest.raises(ParameterError, match=r"^input_spikes\[1\]\[0\] = 5\.5: allowed values are whole time steps"):
        bad.validated()
    bad = copy.deepcopy(sc)
    bad.populations[0].size = np.float64(sc.populations[0].size)
    with pytest.raises(ParameterError, match=r"^populations\[0\]\.size = "):
        bad.validated()
    ok = copy.deepcopy(sc)
    ok.input_spikes[1] = np.asarray(sc.input_spikes[1], dtype=float)  # integral floats are the same steps
    assert np.array_equal(ok.validated().input_spikes[1], sc.input_spikes[1])


def test_every_validation_scenario_still_loads():
    for path in sorted(SCENARIOS.glob("*.json")):
        assert load(path).name == json.loads(path.read_text())["name"]


# ----------------------------------------------------------------- the command line
@pytest.mark.parametrize("argv, field", [
    (["train", "sine", "--iterations", "0"], "--iterations"),
    (["train", "sine", "--iterations", "five"], "--iterations"),
    (["train", "sine", "--batch-size", "-2"], "--batch-size"),
    (["train", "sine", "--backend", "nest"], "--backend"),
    (["train", "sine", "--family", "events"], "--family"),
    (["train", "sinus"], "task"),
    (["train", "sine", "--itertions", "3"], "--itertions"),
    (["frobnicate"], "command"),
    (["run"], "scenario"),
    (["train", "sine", "--family", "event", "--model", "iaf_typo"], "model = 'iaf_typo'"),
])
def test_cli_arguments(capsys, argv, field):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("eprop: error: ") and field in err[0], err


def test_cli_unknown_argument_as_a_subprocess(tmp_path):
    _one_line_error(_eprop("scenario", "sine", "--out", "x.json", "--seeed", "3", cwd=tmp_path), "--seeed")


# ----------------------------------------------------------------- canonical parameters
@pytest.mark.parametrize("table, values, field", [
    ("recurrent", {"tau_m": "10"}, "recurrent.tau_m = '10'"),
    ("recurrent", {"tau_m": float("nan")}, "recurrent.tau_m = nan"),
    ("optimizer", {"batch_size": True}, "optimizer.batch_size = True"),
    ("optimizer", {"batch_size": 2.0}, "optimizer.batch_size = 2.0"),
    ("optimizer", {"beta_1": 1.0}, "optimizer.beta_1 = 1.0"),
    ("readout", {"loss": "hinge"}, "readout.loss = 'hinge'"),
    ("network", {"feedback": "symmetrical"}, "network.feedback = 'symmetrical'"),
    ("network", [("dt", 1.0)], "network = [('dt', 1.0)]: allowed values are a mapping"),
    ("synapse", {"average_gradient": 1}, "synapse.average_gradient = 1"),
    ("neuron", {}, "table = 'neuron'"),
])
def test_canonical_parameters(table, values, field):
    with pytest.raises(ParameterError) as info:
        parameters.complete(table, values, family="original", model="iaf")
    assert str(info.value).startswith(field), str(info.value)


def test_parameter_of_another_model():
    with pytest.raises(ParameterError, match=r"^recurrent\.tau_a: does not apply to model 'iaf'"):
        parameters.complete("recurrent", {"tau_a": 100.0}, family="original", model="iaf")


def test_durations_must_be_numbers():
    with pytest.raises(ParameterError, match=r"^network\.sequence = '100': allowed values are finite numbers"):
        parameters.to_steps("100", 1.0, "network.sequence")
    with pytest.raises(ParameterError, match=r"^network\.sequence = 0\.5 ms: must be a non-negative whole number"):
        parameters.to_steps(0.5, 1.0, "network.sequence")


# ----------------------------------------------------------------- the attach APIs (public entry points only)
def _brian2_model():
    import brian2 as b2
    from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, mV, ms

    b2.BrianLogger.suppress_name("unused_brian_object")  # the groups are refused before they run
    b2.defaultclock.dt = 1 * ms
    ns = {"tau": 20 * ms, "v_th": 1 * mV}
    rec = NeuronGroup(4, "dv/dt = -v/tau : volt", threshold="v > v_th", reset="v -= v_th", method="exact",
                      namespace=ns, name="rec")
    inp = SpikeGeneratorGroup(3, [0, 1, 2], [1, 5, 9] * ms, name="inp")
    s_in = Synapses(inp, rec, "w : volt", on_pre="v_post += w", namespace=ns, name="s_in")
    s_in.connect()
    s_in.w = 0.5 * mV
    s_rec = Synapses(rec, rec, "w : volt", on_pre="v_post += w", namespace=ns, name="s_rec")
    s_rec.connect(condition="i != j")
    return inp, rec, s_in, s_rec


@pytest.mark.parametrize("kwargs, field", [
    ({"parameters": {"network": {"sequence": 100.0}, "optimizer": {"eta": -1.0}}}, "optimizer.eta = -1.0"),
    ({"parameters": {"network": {"sequence": 100.0}, "optimizer": {"w_typo": 1.0}}}, "optimizer.w_typo"),
    ({"parameters": {"network": {"sequence": 100.0}}, "readout_weights": {"w_out": [[0.1, np.inf, 0.0, 0.2]]}},
     "w_out[0][1] = inf"),
    ({"parameters": {"network": {"sequence": 100.0}, "optimizer": {"w_min": -0.2, "w_max": 0.2}}},
     "w_in[0][0] = 0.5"),
])
def test_brian2_attach_eprop(kwargs, field):
    import brian2 as b2

    from brian2_ext import attach_eprop

    saved = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    try:
        with pytest.raises(ParameterError) as info:
            attach_eprop(*_brian2_model(), namespace={}, **kwargs)
    finally:
        b2.prefs.codegen.target = saved
    assert field in str(info.value), str(info.value)


@pytest.mark.parametrize("kwargs, field", [
    ({"optimizer": {"w_typo": 1.0}}, "optimizer.w_typo: unknown parameter"),
    ({"recurrent": {"tau_m": -5.0}}, "populations[0].params.tau_m = -5.0 ms"),
    ({"target": "inf"}, "target[0][42] = inf"),
    ({"w_out": np.full((1, 3), 200.0)}, "w_out[0][0] = 200.0 mV"),
])
def test_nest_add_eprop(kwargs, field):
    import nest

    from nest_models.pynest import add_eprop, install

    nest.ResetKernel()
    nest.resolution = 1.0
    install()
    inputs = nest.Create("spike_generator", 2, {"spike_times": [3.0, 7.0]})
    population = nest.Create("iaf_psc_delta", 3)
    target = np.zeros((1, 100))
    if kwargs.pop("target", None) == "inf":
        target[0, 42] = np.inf
    with pytest.raises(ParameterError) as info:
        add_eprop(inputs, population, target, sequence=50.0, **kwargs)
    assert field in str(info.value), str(info.value)
