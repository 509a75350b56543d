"""Event-family e-prop in Brian2 (runtime Cython and cpp_standalone) against the NumPy reference and NEST's numbers.

Every trace, synapse trace, weight snapshot and weight event must equal
:mod:`eprop_plugins.reference.event` to relative error <= 1e-10 with identical spikes (in practice
they are bit-identical).  Default tests use two structures (one Cython build shared by five
scenarios, one cpp_standalone build with Adam and batches); the rest is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest

from eprop_plugins import reference, tasks
from eprop_plugins.tasks_event import NEST_TEST_LOSSES, nest_test_losses
from validation import scenario_library as library

from brian2_ext import backend_runtime, backend_standalone
from brian2_ext.runner import run_scenario

RTOL = 1e-10


def assert_equal_to_reference(res, ref, events: bool = True) -> None:
    """Spikes identical; traces, synapse traces, snapshots, weight events and losses within RTOL.

    Sparse projections: the snapshots' connection pairs identical too (either family).  ``events``:
    the scenario has weight events (False: a silent network).
    """
    assert np.array_equal(res.traces["z"], ref.traces["z"]), "spike trains differ"
    for group, want_d, got_d in (("trace", ref.traces, res.traces), ("synapse", ref.synapse_traces, res.synapse_traces),
                                 ("weights", ref.weights, res.weights)):
        for name, want in want_d.items():
            got = np.asarray(got_d[name], dtype=float)
            scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-300)
            assert got.shape == np.shape(want), f"{group} {name}: shape {got.shape} vs {np.shape(want)}"
            assert np.max(np.abs(got - want), initial=0.0) <= RTOL * scale, f"{group} {name}"
    assert set(res.weight_connections) == set(ref.weight_connections)
    for name, pairs in ref.weight_connections.items():
        assert np.array_equal(res.weight_connections[name], pairs), name
    assert (ref.weight_events["step"].size > 0) == events
    for name in ("step", "proj", "pre", "post"):
        assert np.array_equal(res.weight_events[name], ref.weight_events[name]), name
    np.testing.assert_allclose(res.weight_events["w"], ref.weight_events["w"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(res.losses, ref.losses, rtol=RTOL, atol=0)


#: scenarios sharing one structure (7 neurons, gradient descent per step): one Cython build
SHARED = ["event-rec-mse-gd", "event-rec-isi-cutoff", "event-rec-psc-delta", "event-rec-firing-reg",
          "event-rec-symmetric-initial"]
OTHERS = ["event-rec-adam-batch2", "event-rec-optimize-per-spike", "event-rec-symmetric", "event-lif-single",
          "event-lif-tref0", "event-lif-tref5", "event-alif-single", "event-psc-delta-single",
          "event-psc-delta-adapt-single"]


@pytest.mark.parametrize("name", SHARED + [pytest.param(n, marks=pytest.mark.slow) for n in OTHERS])
def test_cython_equals_reference(name):
    sc = library.build(name)
    assert_equal_to_reference(backend_runtime.run(sc, record_weight_events=True), reference.run(sc))


@pytest.mark.parametrize("name", ["event-rec-adam-batch2"]
                         + [pytest.param(n, marks=pytest.mark.slow) for n in SHARED + OTHERS if n != "event-rec-adam-batch2"])
def test_standalone_equals_reference(name):
    sc = library.build(name)
    res = backend_standalone.run(sc, record_weight_events=True)
    assert_equal_to_reference(res, reference.run(sc))


@pytest.mark.parametrize("budget", [1, 8000])  # bytes per window: 1 step, and 10 steps of these 98 synapses
@pytest.mark.parametrize("backend", [backend_runtime, backend_standalone], ids=["cython", "standalone"])
def test_weights_read_in_windows_give_the_reference_weight_events(backend, budget, monkeypatch):
    """The per-step weight recording is read in windows (brian2_ext.weight_windows: 64 MB by default, a window
    for the whole run here); windows of 1 and of 10 steps, whose boundaries fall between a spike and its
    transmissions, still give every weight event, equal to the reference's."""
    from brian2_ext import runner_event, weight_windows

    monkeypatch.setattr(weight_windows, "WINDOW_BYTES", budget)
    windows = []
    window = runner_event._WeightEvents.window

    def counted(self, first, blocks):
        windows.append((first, {b.shape[1] for b in blocks.values()}))
        window(self, first, blocks)

    monkeypatch.setattr(runner_event._WeightEvents, "window", counted)
    sc = library.build("event-rec-adam-batch2")
    res = backend.run(sc, record_weight_events=True)
    steps = weight_windows.window_steps(98, budget)
    assert steps == (1 if budget == 1 else 10)
    assert [first for first, _ in windows] == list(range(0, sc.n_steps + 2, steps))  # Brian2 steps 0 .. N + 1
    assert all(len(widths) == 1 and widths.pop() <= steps for _, widths in windows)
    assert_equal_to_reference(res, reference.run(sc))


@pytest.mark.slow
def test_numpy_target_equals_reference():
    sc = library.build("event-rec-adam-batch2")
    assert_equal_to_reference(run_scenario(sc, mode="numpy"), reference.run(sc))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["standalone", "cython"])
@pytest.mark.parametrize("model", list(NEST_TEST_LOSSES))
def test_sine_reproduces_nest_test_losses(model, mode):
    sc = tasks.sine("event", 5, model=model)
    seen = []
    res = run_scenario(sc, mode=mode, record=False, on_iteration=lambda i, loss: seen.append((i, loss)))
    np.testing.assert_allclose(nest_test_losses(sc, res.traces["y"]), NEST_TEST_LOSSES[model], rtol=1e-8, atol=0)
    assert [i for i, _ in seen] == list(range(5))
    np.testing.assert_allclose([loss for _, loss in seen], res.losses, rtol=0, atol=0)
