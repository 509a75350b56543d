"""The PyNEST helpers (nest_models.pynest) and the existing-network example, run as a test.

The example builds an ordinary PyNEST network, adds e-prop with ``add_eprop`` and trains it; the
trained run must equal the NumPy reference on the scenario ``add_eprop`` derived from the user's
network (spikes identical, traces to 1e-10), and the loss must fall.
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
