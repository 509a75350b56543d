"""The PyNEST helpers (nest_models.pynest) and the existing-network example, run as a test.

The example builds an ordinary PyNEST network, adds e-prop with ``add_eprop`` and trains it, in
both families; the trained run must equal the NumPy reference on the scenario ``add_eprop`` derived
from the user's network (spikes identical, traces to 1e-10, losses to 1e-12), and the loss must
fall.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import reference
from eprop_plugins.parameters import ParameterError
from validation.compare import compare_results

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "nest_existing_network.py"


def _example():
    spec = importlib.util.spec_from_file_location("nest_existing_network", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_existing_network_example_trains_and_matches_reference():
    eprop, result = _example().main(iterations=60)
    sc = eprop.scenario
    # the user's network arrived unchanged in the scenario
    assert (sc.n_in, sc.n_rec, sc.n_out, sc.n_sequences) == (20, 30, 1, 60)
    assert sc.populations[0].params["tau_m"] == 30.0 and sc.populations[0].params["v_thresh"] == 0.03
    assert np.count_nonzero(sc.w_rec) == 30 * 29 and np.count_nonzero(sc.w_in) == 20 * 30
    cmp = compare_results(sc, reference.run(sc), result, rtol=1e-10)
    assert cmp.status == "pass", cmp.summary()
    assert result.losses[-1] < 0.5 * result.losses[0], result.losses[[0, -1]]


def test_existing_network_event_family_with_learning_window_matches_reference():
    eprop, result = _example().main(iterations=10, family="event")
    sc = eprop.scenario
    # the user's iaf_psc_delta population became eprop_iaf_psc_delta_neuron with its threshold and reset
    assert (sc.family, sc.populations[0].model, sc.n_in, sc.n_rec, sc.n_sequences) == ("event", "iaf_psc_delta",
                                                                                         20, 30, 10)
    params = sc.populations[0].params
    assert (params["v_thresh"], params["v_reset"], params["tau_m"]) == (0.5, -0.5, 30.0)
    assert eprop.recurrent.get("model")[0] == "eprop_iaf_psc_delta_neuron"
    lam = sc.learning_window_signal.reshape(10, 200)
    assert np.all(lam[:, :100] == 0.0) and np.all(lam[:, 100:] == 1.0)
    ref = reference.run(sc)
    np.testing.assert_allclose(result.losses[:5], ref.losses[:5], rtol=1e-12, atol=0.0)
    cmp = compare_results(sc, ref, result, rtol=1e-10)
    assert cmp.status == "pass", cmp.summary()
    # the error counts only inside the learning window (NEST multiplies it by the window signal)
    assert np.all(result.traces["error"][sc.learning_window_signal == 0.0] == 0.0)
    assert np.any(result.traces["error"][sc.learning_window_signal == 1.0] != 0.0)
    assert np.mean(result.losses[-5:]) < 0.7 * result.losses[0], result.losses


def test_learning_windows_of_the_other_family_are_refused():
    import nest

    from nest_models.pynest import install, network_scenario

    nest.ResetKernel()
    install()
    inputs = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    population = nest.Create("iaf_psc_delta", 3)
    target = np.zeros((1, 100))  # one sequence of 10 ms at NEST's default resolution 0.1 ms
    with pytest.raises(ParameterError, match="learning_window: the event family takes a per-step"):
        network_scenario(inputs, population, target, sequence=10.0, family="event", learning_window=5.0)
    with pytest.raises(ParameterError, match="learning_window_signal: only the event family"):
        network_scenario(inputs, population, target, sequence=10.0, learning_window_signal=np.ones(100))
    with pytest.raises(ParameterError, match="family = 'events': allowed values are original, event"):
        network_scenario(inputs, population, target, sequence=10.0, family="events")
    with pytest.raises(ParameterError, match="exists only in family event"):
        network_scenario(inputs, population, target, sequence=10.0, model="iaf_psc_delta")


def test_add_eprop_needs_the_module_installed_first():
    import nest

    from nest_models.pynest import add_eprop

    nest.ResetKernel()
    inputs = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    population = nest.Create("iaf_psc_delta", 3)
    with pytest.raises(ParameterError, match=r"call nest_models\.pynest\.install\(\) right after nest\.ResetKernel"):
        add_eprop(inputs, population, np.zeros((1, 10)), sequence=10.0)


def test_network_scenario_refuses_non_generator_inputs():
    import nest

    from nest_models.pynest import install, network_scenario

    nest.ResetKernel()
    install()
    inputs = nest.Create("poisson_generator", 2)
    population = nest.Create("iaf_psc_delta", 3)
    with pytest.raises(ParameterError, match="inputs: must be spike_generator nodes"):
        network_scenario(inputs, population, np.zeros((1, 10)), sequence=10.0)
