"""``nest-builtin`` (NEST 3.10's *_bsshslm_2020 models) against public numbers and the NumPy reference.

Trace comparison rule used below: for arrays ``a`` (reference) and ``b`` (NEST) the relative error is
``|a - b| / max(|a|, |b|)``, taken as 0 where ``|a - b| <= 1e-300`` (both exactly equal, or a value
that is exactly 0 in one and denormal-small in the other); it must be <= 1e-10 everywhere.
Spike trains must be identical, weight events identical in (step, proj, pre, post) with weights
within 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from eprop_plugins import backends, reference, tasks
from eprop_plugins import connectivity as cn
from eprop_plugins.backends import nest_builtin
from eprop_plugins.parameters import ParameterError
from eprop_plugins.random_scenarios import FEATURES, coverage, random_scenario
from eprop_plugins.reference_numbers import EVIDENCE_ORIGINAL_NEST, SINE_ORIGINAL_NEST, SINE_ORIGINAL_TF

RTOL = 1e-10
ABS_FLOOR = 1e-300
#: the weight change since the start (w - w_initial) must agree to this fraction of the projection's
#: largest change: catches gradient errors that are too small to show in w itself
DELTA_W_RTOL = 1e-7
SEEDS = list(range(24))
TRACES = ("v", "psi", "adaptation", "v_th_adapt", "learning_signal", "readout_v", "y", "target", "error")


def max_relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a - b| / max(|a|, |b|)``, counting differences <= 1e-300 as 0 (see module doc)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    diff = np.abs(a - b)
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(diff <= ABS_FLOOR, 0.0, diff / np.where(scale > 0, scale, 1.0))
    return float(rel.max(initial=0.0))


def test_check_reports_nest_version_and_registry_entry():
    assert nest_builtin.check().startswith("3.10")
    assert backends.get("nest-builtin") is nest_builtin
    assert backends.status("nest-builtin")[0]


def test_sine_original_reproduces_nest_and_tensorflow_losses():
    seen = []
    res = nest_builtin.run(tasks.sine("original", 5), record_weight_events=False,
                           on_iteration=lambda i, loss: seen.append((i, loss)))
    np.testing.assert_allclose(res.losses, SINE_ORIGINAL_NEST, rtol=1e-8, atol=0)
    np.testing.assert_allclose(res.losses, SINE_ORIGINAL_TF, rtol=1e-7, atol=0)
    assert [i for i, _ in seen] == list(range(5))
    np.testing.assert_array_equal([loss for _, loss in seen], res.losses)
    assert res.backend == "nest-builtin" and res.meta["nest_version"].startswith("3.10")


def test_evidence_original_reproduces_nest_losses():
    res = nest_builtin.run(tasks.evidence("original", 5, batch_size=1), record_weight_events=False)
    np.testing.assert_allclose(res.losses, EVIDENCE_ORIGINAL_NEST[1], rtol=1e-8, atol=0)


@pytest.fixture(scope="module")
def random_runs():
    """Reference and NEST results of the random original-family scenarios (run once per module)."""
    runs = {}
    for seed in SEEDS:
        sc = random_scenario("original", seed)
        runs[seed] = (sc.validated(), reference.run(sc), nest_builtin.run(sc))
    return runs


@pytest.mark.parametrize("seed", SEEDS)
def test_random_scenario_matches_reference_step_for_step(random_runs, seed):
    sc, ref, nest = random_runs[seed]
    # spikes identical (and there are plenty of them)
    z_ref, z_nest = ref.traces["z"], nest.traces["z"]
    differ = np.nonzero(np.any(z_ref != z_nest, axis=1))[0]
    assert differ.size == 0, f"first spike difference at aligned step {differ[0]}"
    assert z_ref.sum() >= sc.n_rec * sc.n_sequences, "too few spikes"
    # a sparse network may leave a neuron silent (few inputs); a dense one may not
    assert np.mean(z_ref.sum(axis=0) > 0) >= (0.8 if sc.is_sparse else 1.0), "silent neurons"
    for name in TRACES:
        assert nest.traces[name].shape == ref.traces[name].shape, name
        err = max_relative_error(ref.traces[name], nest.traces[name])
        assert err <= RTOL, f"{name}: max relative error {err:.3g}"
    # weight events: same transmissions, same weights
    ev_ref, ev_nest = ref.weight_events, nest.weight_events
    assert ev_nest["step"].size == ev_ref["step"].size > 0
    for key in ("step", "proj", "pre", "post"):
        np.testing.assert_array_equal(ev_nest[key], ev_ref[key], err_msg=key)
    assert max_relative_error(ev_ref["w"], ev_nest["w"]) <= RTOL
    initial = tuple(cn.to_dense(w) for w in (sc.w_in, sc.w_rec, sc.w_out))
    for proj in range(3):
        sel = ev_ref["proj"] == proj
        w0 = initial[proj][ev_ref["post"][sel], ev_ref["pre"][sel]]
        d_ref, d_nest = ev_ref["w"][sel] - w0, ev_nest["w"][sel] - w0
        scale = np.abs(d_ref).max(initial=0.0)
        assert scale > 0, f"projection {proj}: no weight changed"
        assert np.abs(d_ref - d_nest).max() <= DELTA_W_RTOL * scale, f"projection {proj}: weight changes differ"
    np.testing.assert_allclose(nest.losses, ref.losses, rtol=RTOL, atol=0)


def _observed_features(sc) -> dict[str, set]:
    """What a validated scenario actually contains, in the vocabulary of ``FEATURES``."""
    pops = sc.populations
    models = {p.model for p in pops}
    return {
        "model": {"mixed" if len(models) > 1 else models.pop()},
        "tau_refrac": {p.params["tau_refrac"] for p in pops},
        "surrogate_gradient_function": {p.params["surrogate_gradient_function"] for p in pops},
        "regular_spike_arrival": {p.params["regular_spike_arrival"] for p in pops},
        "optimizer": {sc.optimizer["type"]},
        "batch_size": {sc.optimizer["batch_size"]},
        "loss": {sc.readout["loss"]},
        "feedback": {sc.network["feedback"]},
        "c_reg": {"non-zero" if any(p.params["c_reg"] > 0 for p in pops) else "zero"},
        "short_learning_window": {sc.learning_window_steps() < sc.steps_per_sequence},
        "average_gradient": {sc.synapse["average_gradient"]},
        "record_synapses": {bool(sc.record_synapses)},
        "i_offset": {"small" if any(p.params["i_offset"] != 0 for p in pops) else "zero"},
        "v_min": {"finite" if any(p.params["v_min"] is not None for p in pops) else "none"},
        "connectivity": {"sparse" if sc.is_sparse else "dense"},
    }


def test_random_scenarios_cover_every_feature():
    seen: dict[str, set] = {}
    for seed in SEEDS:
        sc = random_scenario("original", seed).validated()
        observed = _observed_features(sc)
        for name, value in coverage(seed, "original").items():
            assert value in observed[name], f"seed {seed}: coverage says {name}={value!r}, scenario has {observed[name]}"
        for name, values in observed.items():
            seen.setdefault(name, set()).update(values)
        assert sc.iteration_sequences == sc.optimizer["batch_size"]
        assert 3 <= sc.n_in <= 8 and 4 <= sc.n_rec <= 10 and 1 <= sc.n_out <= 2
        assert 2 <= sc.n_sequences <= 4 and 40 <= sc.steps_per_sequence <= 120
    for name, (family, options, _, _) in FEATURES.items():
        if family == "event":
            continue
        assert set(options) <= seen[name], f"{name}: options {set(options) - seen[name]} never exercised"


def test_random_scenarios_are_valid_in_the_event_family():
    seen = set()
    for seed in SEEDS:
        sc = random_scenario("event", seed).validated()
        seen |= {p.model for p in sc.populations}
        assert all(np.all(np.asarray(s) % sc.steps_per_sequence != 0) for s in sc.input_spikes)
    assert seen == {"iaf", "iaf_adapt", "iaf_psc_delta", "iaf_psc_delta_adapt"}


def test_symmetric_feedback_is_refused_with_a_clear_message():
    sc = random_scenario("original", 0, feedback="symmetric")
    with pytest.raises(ParameterError, match=r"network\.feedback = 'symmetric'.*symmetric_initial"):
        nest_builtin.run(sc)


def test_bad_parameter_is_refused_before_nest_runs():
    sc = random_scenario("original", 1)
    sc.populations[0].params["tau_m"] = -1.0
    with pytest.raises(ParameterError, match=r"populations\[0\]\.params\.tau_m = -1.0 ms: allowed range is > 0"):
        nest_builtin.run(sc)
    with pytest.raises(ParameterError, match="not a feature"):
        random_scenario("original", 1, isi_trace_cutoff="finite")


@pytest.mark.slow
@pytest.mark.parametrize("task,kwargs", [("sine", {}), ("evidence", {"batch_size": 1}), ("evidence", {"batch_size": 2})])
def test_tasks_match_reference_step_for_step(task, kwargs):
    """The public tasks, trace by trace and weight event by weight event (about 20 s each)."""
    sc = tasks.make_task(task, family="original", iterations=5, **kwargs)
    ref, nest = reference.run(sc), nest_builtin.run(sc)
    np.testing.assert_array_equal(nest.traces["z"], ref.traces["z"])
    for name in TRACES:
        err = max_relative_error(ref.traces[name], nest.traces[name])
        assert err <= RTOL, f"{name}: max relative error {err:.3g}"
    for key in ("step", "proj", "pre", "post"):
        np.testing.assert_array_equal(nest.weight_events[key], ref.weight_events[key], err_msg=key)
    assert max_relative_error(ref.weight_events["w"], nest.weight_events["w"]) <= RTOL


def test_offset_current_that_fires_at_interval_start_is_refused():
    sc = random_scenario("original", 2)
    p = sc.populations[0].params
    p["i_offset"] = 1.2 * (p["v_thresh"] - p["v_rest"]) * p["cm"] / (p["tau_m"] * (1.0 - np.exp(-1.0 / p["tau_m"])))
    with pytest.raises(ParameterError, match=r"populations\[0\]\.params\.i_offset = .* nA: allowed range on nest-builtin"):
        nest_builtin.run(sc)


def test_offset_current_that_fires_at_interval_start_fails_in_nest_as_a_backend_error():
    """The same scenario on the wiring layer without the check: NEST's KernelException, wrapped."""
    import nest

    from eprop_plugins.backends import nest_wiring
    from eprop_plugins.errors import BackendError

    sc = random_scenario("original", 2)
    p = sc.populations[0].params
    p["i_offset"] = 1.2 * (p["v_thresh"] - p["v_rest"]) * p["cm"] / (p["tau_m"] * (1.0 - np.exp(-1.0 / p["tau_m"])))
    sc = sc.validated()
    with pytest.raises(BackendError) as info:
        nest_wiring.run(sc, nest_wiring.layout("original"), backend="nest-builtin")
    err = info.value
    assert err.backend == "nest-builtin" and err.scenario == sc.name
    assert isinstance(err.original, nest.NESTError)
    assert str(err).startswith(f"backend nest-builtin, scenario {sc.name}: NEST failed")
    assert "another backend" in str(err) and "e-prop history" in str(err)
    assert err.__cause__ is err.original


def bounded(sc, eta_factor: float = 1.0, margin: float = 1e-3):
    """``sc`` with weight bounds just outside its initial weights (all below 1 mV) and ``eta`` scaled."""
    v = sc.validated()
    w = np.concatenate([v.w_in.ravel(), v.w_rec.ravel(), v.w_out.ravel()])
    assert w.max() + margin < 1.0
    sc.optimizer = {**sc.optimizer, "w_min": float(w.min()) - margin, "w_max": float(w.max()) + margin,
                    "eta": v.optimizer["eta"] * eta_factor}
    return sc


def test_weight_bound_below_one_millivolt_runs_and_clips_as_the_reference():
    """NEST refuses Wmax below its default weight 1.0 unless the translation moves the default inside."""
    sc = bounded(random_scenario("original", 0), eta_factor=10.0)
    w_max = sc.optimizer["w_max"]
    ref, nest = reference.run(sc), nest_builtin.run(sc)
    assert np.sum(ref.weight_events["w"] == w_max) > 10, "the upper bound should be reached"
    np.testing.assert_array_equal(nest.traces["z"], ref.traces["z"])
    for key in ("step", "proj", "pre", "post"):
        np.testing.assert_array_equal(nest.weight_events[key], ref.weight_events[key], err_msg=key)
    assert max_relative_error(ref.weight_events["w"], nest.weight_events["w"]) <= RTOL
    for name in TRACES:
        assert max_relative_error(ref.traces[name], nest.traces[name]) <= RTOL, name
    np.testing.assert_allclose(nest.losses, ref.losses, rtol=RTOL, atol=0)


def test_result_meta_has_timings_and_no_build():
    res = nest_builtin.run(random_scenario("original", 1), record_weight_events=False)
    assert res.meta["compile_seconds"] == 0.0 and res.meta["cached"] is True
    assert 0.0 < res.meta["simulate_seconds"] < res.meta["seconds"]
    assert nest_builtin.build_key(random_scenario("original", 1)) is None and nest_builtin.is_built(None)
