"""The abstract PyNN e-prop types: generated from the parameter tables, validated, no simulator needed."""

from __future__ import annotations

import pytest
from pyNN.errors import NonExistentParameterError
from pyNN.standardmodels import StandardCellType, StandardSynapseType

import pynn_ext
from eprop_plugins import parameters as par
from eprop_plugins.parameters import ParameterError
from pynn_ext import standardmodels as sm


@pytest.mark.parametrize("cls", list(sm.RECURRENT_TYPES.values()))
def test_recurrent_defaults_units_and_docs_come_from_the_table(cls):
    for family in cls.families:
        cell = cls(family=family)
        rows = [r for r in par.RECURRENT if par.applies(r, family, cls.model)]
        assert cell.default_parameters == {r.name: r.default for r in rows if sm.is_parameter(r)}
        assert set(cell.options) == {r.name for r in rows if not sm.is_parameter(r)}
        for r in rows:
            assert cell.units[r.name] == (r.unit if r.unit not in ("", "1") else "dimensionless")
            assert r.name in cls.__doc__
        assert cell.units["v"] == "mV" and cell.units["psi"] == "1/mV"
        assert isinstance(cell, StandardCellType)
        assert {"spikes", "v", "psi", "learning_signal"} <= set(cell.recordable)
        assert ("adaptation" in cell.recordable) == (cls.model in par.ADAPTIVE_MODELS)


def test_families_and_models():
    assert sm.EpropIF().family == "original" and sm.EpropIF(family="event").family == "event"
    assert sm.EpropIFPscDelta().family == "event"
    with pytest.raises(ParameterError, match="family = 'original'"):
        sm.EpropIFPscDeltaAdaptive(family="original")
    with pytest.raises(ParameterError, match="kappa"):
        sm.EpropIF(family="original", kappa=0.9)  # an event-family parameter
    assert sm.EpropIF(family="event", kappa=0.9).parameter_space["kappa"].base_value == 0.9


def test_unknown_parameter_is_pynn_style_and_lists_valid_names():
    with pytest.raises(NonExistentParameterError) as info:
        sm.EpropIF(tau_mem=20.0)
    message = str(info.value)
    assert "'tau_mem'" in message and "tau_m" in message and "c_reg" in message
    assert isinstance(info.value, ParameterError)
    with pytest.raises(NonExistentParameterError, match="'wieght'.*weight"):
        sm.EpropSynapse(wieght=1.0, delay=1.0)


def test_values_are_checked_with_the_canonical_ranges():
    with pytest.raises(ParameterError, match=r"tau_m = -1.0 ms: allowed range is > 0"):
        sm.EpropIF(tau_m=-1.0)
    with pytest.raises(ParameterError, match="surrogate_gradient_function"):
        sm.EpropIF(surrogate_gradient_function="step")
    with pytest.raises(ParameterError, match="eta"):
        sm.Adam(eta=-1.0)


def test_readout_losses_signals_and_options():
    ce = sm.EpropReadout(loss="cross_entropy")
    assert ce.units["readout_signal"] == "dimensionless"
    assert sm.EpropReadout().units["readout_signal"] == "mV"
    with pytest.raises(ParameterError, match="cross_entropy"):
        sm.EpropReadout(family="event", loss="cross_entropy")
    r = sm.EpropReadout(sequence=50.0, learning_window=20.0, target=[0.0, 1.0, 2.0])
    assert r.options["sequence"] == 50.0 and r.options["learning_window"] == 20.0
    assert list(r.parameter_space["target"].base_value.value) == [0.0, 1.0, 2.0]
    with pytest.raises(ParameterError, match="learning_window_signal"):
        sm.EpropReadout(learning_window_signal=[1.0])  # event family only
    with pytest.raises(ParameterError, match="sequence"):
        sm.EpropReadout(family="event", sequence=50.0)
    assert sm.EpropReadout(family="event", learning_window_signal=[0.0, 1.0]).family == "event"


def test_optimizers_and_synapses():
    adam = sm.Adam(eta=5e-3, beta_1=0.8)
    assert adam.complete("event") == par.complete("optimizer", {"type": "adam", "eta": 5e-3, "beta_1": 0.8},
                                                  family="event")
    assert sm.GradientDescent().complete("original")["type"] == "gradient_descent"
    syn = sm.EpropSynapse(optimizer=adam, weight=2.0, delay=1.0, average_gradient=True)
    assert isinstance(syn, StandardSynapseType) and syn.optimizer is adam
    assert syn.synapse_parameters("original")["average_gradient"] is True
    with pytest.raises(ParameterError, match="optimizer"):
        sm.EpropSynapse(optimizer="adam", delay=1.0)
    assert sm.FeedbackSynapse(weight=0.5, delay=1.0).units["weight"] == "dimensionless"


def test_package_exports_the_types():
    for name in ("EpropIF", "EpropIFAdaptive", "EpropIFPscDelta", "EpropIFPscDeltaAdaptive", "EpropReadout",
                 "EpropSynapse", "FeedbackSynapse", "GradientDescent", "Adam"):
        assert getattr(pynn_ext, name) is getattr(sm, name)


def test_delay_none_is_the_time_step_of_the_simulator_set_up_last():
    import pyNN.brian2 as bsim  # noqa: PLC0415 - both simulators in one process, as in the whole suite
    import pyNN.nest as nsim  # noqa: PLC0415

    nsim.setup(timestep=1.0)
    assert sm.EpropSynapse(weight=1.0).parameter_space["delay"].base_value == 1.0
    bsim.setup(timestep=0.5)
    assert sm.EpropSynapse(weight=1.0).parameter_space["delay"].base_value == 0.5
    nsim.setup(timestep=1.0)
    assert sm.FeedbackSynapse(weight=1.0).parameter_space["delay"].base_value == 1.0
