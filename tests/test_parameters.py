"""Bad input is refused with a message naming the parameter and its allowed range."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from eprop_plugins import ParameterError, Population, parameters, reference, tasks
from eprop_plugins.backends import nest_translations as nt
from eprop_plugins.scenario import load


@pytest.fixture()
def sc():
    return tasks.sine("original", 1)


def _expect(sc, match):
    with pytest.raises(ParameterError, match=match):
        sc.validated()


@pytest.mark.parametrize("value", [-30.0, 0.0])
def test_non_positive_time_constants(sc, value):
    sc.populations[0].params["tau_m"] = value
    _expect(sc, r"populations\[0\]\.params\.tau_m = .*allowed range is > 0")


def test_readout_time_constant(sc):
    sc.readout["tau_m"] = -1.0
    _expect(sc, r"readout\.tau_m = -1\.0 ms: allowed range is > 0")


def test_adaptation_time_constant():
    sc = tasks.evidence("original", 1)
    sc.populations[1].params["tau_a"] = 0.0
    _expect(sc, r"populations\[1\]\.params\.tau_a = 0\.0 ms: allowed range is > 0")


def test_refractory_period_not_whole_steps(sc):
    sc.populations[0].params["tau_refrac"] = 2.5
    _expect(sc, r"tau_refrac = 2\.5 ms: must be a non-negative whole number of dt")


def test_unknown_surrogate(sc):
    sc.populations[0].params["surrogate_gradient_function"] = "sigmoid"
    _expect(sc, r"surrogate_gradient_function = 'sigmoid'.*piecewise_linear, exponential, "
                r"fast_sigmoid_derivative, arctan_derivative")


def test_unknown_optimizer(sc):
    sc.optimizer["type"] = "sgd_momentum"
    _expect(sc, r"optimizer\.type = 'sgd_momentum'.*gradient_descent, adam")


def test_unknown_parameter_lists_valid_names(sc):
    sc.populations[0].params["tau_mem"] = 20.0
    _expect(sc, r"tau_mem: unknown parameter; valid names are .*tau_m")


def test_parameter_of_other_family(sc):
    sc.populations[0].params["kappa"] = 0.9
    _expect(sc, r"kappa: does not apply to family 'original'")


def test_model_of_other_family(sc):
    sc.populations[0] = Population("iaf_psc_delta", 100, {})
    _expect(sc, r"iaf_psc_delta.*exists only in family event")


@pytest.mark.parametrize("name,shape", [("w_in", (100, 99)), ("w_rec", (99, 100)), ("w_out", (2, 100)),
                                        ("w_fb", (100, 2))])
def test_weight_shape_mismatch(sc, name, shape):
    setattr(sc, name, np.zeros(shape))
    _expect(sc, rf"{name}: shape \({shape[0]}, {shape[1]}\) does not match the sizes")


def test_autapse(sc):
    sc.w_rec = sc.w_rec.copy()
    sc.w_rec[3, 3] = 0.5
    _expect(sc, "autapses are not supported")


def test_target_shorter_than_sequence(sc):
    sc.target = sc.target[:, :500]
    _expect(sc, r"target: 500 steps is shorter than the 1000 simulated steps")


def test_input_in_first_step_of_a_sequence(sc):
    sc.input_spikes[0] = np.array([0, 5])
    _expect(sc, r"input_spikes\[0\]\[0\] = 0: a spike arrives in the first step of a sequence")


def test_learning_window_longer_than_sequence(sc):
    sc.network["learning_window"] = 2000.0
    _expect(sc, r"learning_window = 2000\.0 ms: allowed range is 0 < learning_window <= sequence")


def test_batch_size(sc):
    sc.optimizer["batch_size"] = 0
    _expect(sc, r"optimizer\.batch_size = 0: allowed range is integer >= 1")


def test_kappa_range():
    sc = tasks.sine("original", 1)
    sc.network["family"] = "event"
    sc.populations[0].params = {"kappa": 1.5}
    sc.readout = {}
    sc.synapse = {}
    sc.input_spikes = [s[s % 1000 != 0] for s in sc.input_spikes]
    _expect(sc, r"kappa = 1\.5: allowed range is 0 <= kappa <= 1")


def test_cross_entropy_in_event_family():
    sc = tasks.sine("original", 1)
    sc.network["family"] = "event"
    sc.populations[0].params = {}
    sc.readout = {"loss": "cross_entropy"}
    sc.synapse = {}
    _expect(sc, r"readout\.loss = 'cross_entropy': the event family supports only 'mean_squared_error'")


def test_reference_run_refuses_bad_input(sc):
    sc.populations[0].params["tau_m"] = -1.0
    with pytest.raises(ParameterError, match="tau_m"):
        reference.run(sc)


def test_scenario_round_trip(tmp_path, sc):
    sc.record_synapses = [("rec", 1, 2)]
    path = sc.save(tmp_path / "s.json")
    back = load(path)
    a, b = sc.validated(), back.validated()
    for name in ("w_in", "w_rec", "w_out", "w_fb", "target"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert all(np.array_equal(x, y) for x, y in zip(a.input_spikes, b.input_spikes))
    assert a.populations == b.populations and a.network == b.network and a.optimizer == b.optimizer
    assert b.record_synapses == [("rec", 1, 2)]
    r1 = reference.run(sc, record_weight_events=False)
    r2 = reference.run(back, record_weight_events=False)
    np.testing.assert_array_equal(r1.losses, r2.losses)


def test_nest_translation_scales_and_reverses():
    canonical = parameters.complete("recurrent", {"cm": 0.001, "i_offset": 0.5, "f_target": 10.0}, family="original",
                                    model="iaf")
    status = nt.to_nest(nt.RECURRENT, canonical)
    assert status["C_m"] == pytest.approx(1.0) and status["I_e"] == pytest.approx(500.0)
    assert "V_min" not in status  # None: NEST's default (no bound)
    back = nt.from_nest(nt.RECURRENT, {**status, "f_target": 0.01})  # NEST reads f_target back in spikes/ms
    assert back["f_target"] == pytest.approx(10.0) and back["cm"] == pytest.approx(0.001)
    opt = nt.to_nest(nt.OPTIMIZER, parameters.complete("optimizer", {}, family="original"))
    assert "beta_1" not in opt and opt["Wmin"] == -100.0


def test_defaults_documented_table():
    rst = parameters.parameter_table_rst("recurrent")
    for row in parameters.RECURRENT:
        assert f"``{row.name}``" in rst
    assert copy.deepcopy(parameters.complete("network", {}))["family"] == "original"
