"""``nestml`` backend: the NESTML e-prop models built into a NEST module, against public numbers,
the NumPy reference and NEST's built-in models.

The module is built (or found) in the shared cache once per test session, then loaded into this
process for all other tests; building from an empty cache, concurrently and after a killed build is
tests/test_build_safety.py's subject.  Traces and weights are
compared with :func:`validation.compare.compare_results` (relative error normalised by the
quantity's largest reference value) at rtol 1e-10; spike trains must be identical.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from eprop_plugins import backends, reference, tasks
from eprop_plugins import connectivity as cn
from eprop_plugins.backends import nest_builtin
from eprop_plugins.parameters import ParameterError
from eprop_plugins.random_scenarios import random_scenario
from eprop_plugins.reference_numbers import EVIDENCE_ORIGINAL_NEST, SINE_ORIGINAL_NEST
from nest_models import backend as nestml
from nest_models import build
from validation.compare import compare_results

RTOL = 1e-10
SEEDS = list(range(8))


@pytest.fixture(scope="session")
def clean_build():
    """The module of the current sources in the shared cache (built there if missing), loaded into this
    process (once per session).  Its key is the hash of the sources, so an edited model is rebuilt."""
    cache = build.cache_dir()
    mod = build.build_module(cache=cache)
    assert mod.path.is_file() and mod.key == build.source_hash()
    import nest

    nest.ResetKernel()  # other tests may have created nodes: NEST installs modules only into an empty kernel
    build.load_module(cache=cache)
    return cache, mod


def _assert_matches(sc, ref, got, rtol=RTOL):
    cmp = compare_results(sc.validated(), ref, got, rtol=rtol)
    assert cmp.status == "pass", cmp.summary()
    names = {q.name for q in cmp.quantities if q.status == "pass"}
    for name in ("spikes", "traces/v", "traces/psi", "traces/learning_signal", "traces/y", "traces/error", "losses"):
        assert name in names, f"{name} was not compared"
    return cmp


# ------------------------------------------------------------------------------------------ build
def test_cached_load_is_fast(clean_build):
    cache, first = clean_build
    again = build.build_module(cache=cache)
    assert again.cached and again.path == first.path and again.key == build.source_hash()
    assert again.seconds < 2.0
    # a fresh process: find the cached module and install it into NEST in under two seconds
    code = (
        "import time, nest; from nest_models import build; t = time.perf_counter(); "
        f"build.load_module(cache={str(cache)!r}); print(time.perf_counter() - t); "
        "print('eprop_iaf_bsshslm_2020_neuron' in nest.node_models)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[-2]) < 2.0 and out[-1] == "True"


def test_cache_is_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.setenv("EPROP_CACHE_DIR", str(tmp_path))
    assert build.cache_dir() == tmp_path.resolve()
    monkeypatch.delenv("EPROP_CACHE_DIR")
    assert build.cache_dir().parts[-2:] == (".cache", "eprop-plugins")


def test_missing_compiler_is_reported_by_name(monkeypatch):
    real = build.shutil.which
    monkeypatch.setattr(build.shutil, "which", lambda tool: None if tool == "g++" else real(tool))
    with pytest.raises(build.BuildError, match=r"missing build tool\(s\): g\+\+"):
        build.check_toolchain()


def test_check_and_registry(clean_build):
    assert backends.get("nestml") is nestml
    assert backends.status("nestml")[0]


def test_parameters_reach_the_compiled_models_unchanged(clean_build):
    """NESTML 9 mangles some numeric literals; the defaults and set values must arrive intact."""
    import nest

    nest.ResetKernel()
    build.load_module()  # ResetKernel unloads modules
    n = nest.Create("eprop_iaf_adapt_bsshslm_2020_neuron")
    assert n.get("V_min") == -1.79e308 and n.get("surrogate_gradient_function") == "piecewise_linear"
    values = {"c_reg": 1e-10, "f_target": 1e-20, "V_th": -54.25, "E_L": -70.5, "V_m": -65.0, "adapt_beta": 1.7e-3,
              "adapt_tau": 2000.0, "surrogate_gradient_function": "arctan_derivative", "C_m": 1.0, "t_ref": 3.0}
    n.set(values)
    for key, value in values.items():
        assert n.get(key) == value, key
    assert n.get("surrogate_gradient_index") == 3
    r = nest.Create("eprop_readout_bsshslm_2020_neuron", params={"loss": "cross_entropy"})
    assert r.get("loss") == "cross_entropy" and r.get("loss_index") == 1
    with pytest.raises(Exception, match="surrogate_gradient_function = 'nope': allowed values are piecewise_linear"):
        n.set(surrogate_gradient_function="nope")
    with pytest.raises(Exception, match="loss = 'nope': allowed values are mean_squared_error, cross_entropy"):
        r.set(loss="nope")


# ------------------------------------------------------------------------------------------ public numbers
def test_sine_reproduces_nest_reference_losses(clean_build):
    seen = []
    res = nestml.run(tasks.sine("original", 5), record_weight_events=False, on_iteration=lambda i, l: seen.append(l))
    np.testing.assert_allclose(res.losses, SINE_ORIGINAL_NEST, rtol=1e-8, atol=0)
    np.testing.assert_array_equal(seen, res.losses)
    assert res.backend == "nestml"


def test_evidence_reproduces_nest_reference_losses(clean_build):
    res = nestml.run(tasks.evidence("original", 5), record_weight_events=False)
    np.testing.assert_allclose(res.losses, EVIDENCE_ORIGINAL_NEST[1], rtol=1e-8, atol=0)


# ------------------------------------------------------------------------------------------ step for step
def test_sine_matches_reference_step_for_step(clean_build):
    sc = tasks.sine("original", 2)
    _assert_matches(sc, reference.run(sc), nestml.run(sc))


def test_evidence_matches_reference_and_nest_builtin(clean_build):
    """Cross-entropy readouts, adaptive neurons, Adam: against the reference and NEST's own models."""
    sc = tasks.evidence("original", 2)
    got = nestml.run(sc)
    _assert_matches(sc, reference.run(sc), got)
    builtin = nest_builtin.run(sc)
    for name, trace in builtin.traces.items():
        np.testing.assert_array_equal(got.traces[name], trace, err_msg=name)  # same floating-point order
    for key, col in builtin.weight_events.items():
        np.testing.assert_array_equal(got.weight_events[key], col, err_msg=key)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_scenarios_match_reference(clean_build, seed):
    """Small networks covering refractoriness, all surrogates, both arrival modes, MSE/CE, GD/Adam, batches."""
    sc = random_scenario("original", seed)
    _assert_matches(sc, reference.run(sc), nestml.run(sc))


def test_one_and_two_threads_give_identical_results(clean_build):
    sc = random_scenario("original", 3)
    one, two = nestml.run(sc, threads=1), nestml.run(sc, threads=2)
    assert two.meta["threads"] == 2
    for name, trace in one.traces.items():
        np.testing.assert_array_equal(two.traces[name], trace, err_msg=name)
    for key, col in one.weight_events.items():
        np.testing.assert_array_equal(two.weight_events[key], col, err_msg=key)
    np.testing.assert_array_equal(two.losses, one.losses)


def test_refusals_are_clear(clean_build):
    with pytest.raises(ParameterError, match=r"network\.feedback = 'symmetric'"):
        nestml.run(random_scenario("original", 0, feedback="symmetric"))
    with pytest.raises(ParameterError, match="threads = 0: allowed range is integer >= 1"):
        nestml.run(random_scenario("original", 0), threads=0)


# ------------------------------------------------------------------------------------------ event family
@pytest.mark.parametrize("model", ["iaf", "iaf_adapt", "iaf_psc_delta", "iaf_psc_delta_adapt"])
def test_event_sine_matches_reference_and_nest_builtin(clean_build, model):
    """Each event-family neuron model on NEST's event sine test (3 iterations, GD or Adam)."""
    sc = tasks.sine("event", 3, model=model)
    got = nestml.run(sc)
    _assert_matches(sc, reference.run(sc), got)
    builtin = nest_builtin.run(sc)
    for name, trace in builtin.traces.items():
        np.testing.assert_array_equal(got.traces[name], trace, err_msg=name)
    for key, col in builtin.weight_events.items():
        np.testing.assert_array_equal(got.weight_events[key], col, err_msg=key)
    np.testing.assert_array_equal(got.losses, builtin.losses)


@pytest.mark.parametrize("seed", SEEDS)
def test_event_random_scenarios_match_reference(clean_build, seed):
    """ISI cutoff, optimize_each_step on/off, learning-window signals, mixed models, offsets, V_min."""
    sc = random_scenario("event", seed)
    _assert_matches(sc, reference.run(sc), nestml.run(sc))


def test_event_family_one_and_two_threads_identical(clean_build):
    sc = random_scenario("event", 4)
    one, two = nestml.run(sc, threads=1), nestml.run(sc, threads=2)
    for name, trace in one.traces.items():
        np.testing.assert_array_equal(two.traces[name], trace, err_msg=name)
    for key, col in one.weight_events.items():
        np.testing.assert_array_equal(two.weight_events[key], col, err_msg=key)


def test_surrogate_gradient_is_the_same_in_every_model():
    """NESTML 9 has no includes: the surrogate function is repeated per model and must not drift."""
    bodies = {}
    for path in sorted(build.HERE.glob("*.nestml")):
        text = path.read_text()
        if "function surrogate_gradient_fn" in text:
            bodies[path.name] = text[text.index("    function surrogate_gradient_fn"):].strip()
    assert len(bodies) == 6 and len(set(bodies.values())) == 1, sorted(bodies)


# ------------------------------------------------------------------------------------------ translation, meta
def _bounded(sc, eta_factor: float = 1.0):
    """``sc`` with weight bounds 1e-3 mV outside its initial weights (all below 1 mV), ``eta`` scaled."""
    v = sc.validated()
    w = np.concatenate([cn.connections(x)[2] for x in (v.w_in, v.w_rec, v.w_out)])
    sc.optimizer = {**sc.optimizer, "w_min": float(w.min()) - 1e-3, "w_max": float(w.max()) + 1e-3,
                    "eta": v.optimizer["eta"] * eta_factor}
    assert sc.optimizer["w_max"] < 1.0
    return sc


@pytest.mark.parametrize("family,seed,eta_factor", [("original", 0, 10.0), ("event", 5, 1.0)])
def test_weight_bound_below_one_millivolt_runs_and_clips_as_the_reference(clean_build, family, seed, eta_factor):
    """NEST refuses Wmax below its default weight 1.0 unless the translation moves the default inside."""
    sc = _bounded(random_scenario(family, seed), eta_factor)
    ref, got = reference.run(sc), nestml.run(sc)
    clipped = np.isin(ref.weight_events["w"], [sc.optimizer["w_min"], sc.optimizer["w_max"]]).sum()
    assert clipped > 10, "the bounds should be reached"
    _assert_matches(sc, ref, got)
    builtin = nest_builtin.run(sc)
    for key, col in builtin.weight_events.items():
        np.testing.assert_array_equal(got.weight_events[key], col, err_msg=key)


def test_build_key_is_built_and_meta(clean_build, monkeypatch, tmp_path):
    cache, mod = clean_build
    sc = random_scenario("original", 1)
    monkeypatch.setenv("EPROP_CACHE_DIR", str(cache))
    assert nestml.build_key(sc) == nestml.build_key(random_scenario("event", 2)) == build.source_hash() == mod.key
    assert nestml.is_built(sc)
    res = nestml.run(sc, record_weight_events=False)
    assert res.meta["cached"] is True and res.meta["compile_seconds"] == 0.0
    assert res.meta["module"] == str(mod.path) and 0.0 < res.meta["simulate_seconds"] < res.meta["seconds"]
    # an empty cache: not built there, but this process already has the module loaded, so nothing is compiled
    monkeypatch.setenv("EPROP_CACHE_DIR", str(tmp_path))
    assert not nestml.is_built(sc)
    res = nestml.run(sc, record_weight_events=False)
    assert res.meta["cached"] is True and res.meta["compile_seconds"] == 0.0
    assert not nestml.is_built(sc)


@pytest.mark.slow
def test_first_run_on_an_empty_cache_reports_its_compile_time(tmp_path):
    """A fresh process on an empty cache builds the module inside run() (1-3 minutes) and says so in meta."""
    code = (
        "from eprop_plugins.random_scenarios import random_scenario; from nest_models import backend; "
        "sc = random_scenario('event', 1); b = backend.is_built(sc); r = backend.run(sc); "
        "print(b, r.meta['cached'], r.meta['compile_seconds'], r.meta['seconds'], backend.is_built(sc))"
    )
    env = {**os.environ, "EPROP_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    before, cached, compile_s, total, after = out.split()[-5:]
    assert (before, cached, after) == ("False", "False", "True")
    assert 10.0 < float(compile_s) < float(total)
