"""Losses-only runs of the NEST backends (``record=False``): the same numbers, without the recording.

For ``nest-builtin`` and ``nestml``, in both families (sine task and one validation scenario each):
the losses of ``record=False`` are bit-identical to those of a recording run, weight events too
when asked, the Result has no traces, and the kernel holds no multimeter on the recurrent neurons
(only the readouts' one, from which the losses come).
"""

from __future__ import annotations

import numpy as np
import pytest

from eprop_plugins import backends, tasks
from eprop_plugins.backends import nest_builtin
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.random_scenarios import random_scenario
from nest_models import backend as nestml
from nest_models import build

BACKENDS = {"nest-builtin": nest_builtin, "nestml": nestml}

SCENARIOS = {
    "sine-original": lambda: tasks.sine("original", 2),
    "sine-event": lambda: tasks.sine("event", 3),
    "random-original-3": lambda: random_scenario("original", 3),
    "random-event-5": lambda: random_scenario("event", 5),
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_losses_only_equals_recording_run(backend, scenario):
    sc = SCENARIOS[scenario]()
    run = BACKENDS[backend].run
    full = run(sc, record_weight_events=True)
    seen = []
    lean = run(sc, record=False, record_weight_events=True, on_iteration=lambda i, loss: seen.append(loss))
    np.testing.assert_array_equal(lean.losses, full.losses)
    np.testing.assert_array_equal(seen, full.losses)
    assert lean.traces == {} and lean.meta["record"] is False and full.meta["record"] is True
    assert lean.weight_events.keys() == full.weight_events.keys() and len(full.weight_events["w"]) > 0
    for name, column in full.weight_events.items():
        np.testing.assert_array_equal(lean.weight_events[name], column, err_msg=name)

    # the kernel of the losses-only run: one multimeter, on the readouts; the spike recorder for the weight events
    nest = nw.import_nest()
    meters = nest.GetNodes({"model": "multimeter"})
    assert len(meters) == 1
    targets = {c.target for c in nest.GetConnections(source=meters)}
    readouts = nest.GetNodes({"model": nw.layout(sc.validated().family, nestml=backend == "nestml").models["readout"]})
    assert targets == set(readouts.tolist())
    assert len(nest.GetNodes({"model": "spike_recorder"})) == 1


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("family", ["original", "event"])
def test_losses_only_without_weight_events_has_no_recurrent_recorder(backend, family):
    sc = tasks.sine(family, 2)
    res = backends.run(backend, sc, traces=False)  # the public call reaches record=False
    assert res.traces == {} and not res.weight_events and res.meta["record"] is False
    np.testing.assert_array_equal(res.losses, BACKENDS[backend].run(sc, record_weight_events=False).losses)

    nest = nw.import_nest()
    lay = nw.layout(family, nestml=backend == "nestml")
    nw.reset_kernel(sc.validated())
    if backend == "nestml":
        build.load_module()  # installs the NESTML module into the fresh kernel
    net = nw.create_network(sc.validated(), lay, record=False, record_weight_events=False)
    assert net.multimeters == [] and net.spike_recorder is None
    assert len(nest.GetNodes({"model": "multimeter"})) == 1
    assert len(nest.GetNodes({"model": "spike_recorder"})) == 0
