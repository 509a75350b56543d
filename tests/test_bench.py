"""``eprop bench``: the BPTT baseline computes the real gradient, thread counts do not change results,
``--quick`` writes a valid JSON file and a plot.  Speed itself is measured by the benchmark, not here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import bptt


def _tiny(spike: str, recurrent: bool, seed: int = 3):
    rng = np.random.RandomState(seed)
    n_in, n_rec, n_out, T = 4, 3, 2, 40
    net = bptt.BpttNetwork(w_in=rng.randn(n_rec, n_in) * 0.05, w_rec=rng.randn(n_rec, n_rec) * 0.05 * recurrent,
                           w_out=rng.randn(n_out, n_rec), alpha=np.exp(-1 / 20), kappa=np.exp(-1 / 10),
                           v_th=0.03, spike=spike, sigmoid_scale=0.05)
    x = (rng.rand(T, n_in) < 0.3).astype(float)
    target = rng.randn(T, n_out)
    return net, x, target


def test_bptt_equals_eprop_without_recurrence():
    """Without recurrent weights e-prop is exact: BPTT's and the forward eligibility-trace gradient agree."""
    net, x, target = _tiny("heaviside", recurrent=False)
    g = bptt.bptt_gradient(net, x, target)
    assert np.abs(g["w_in"]).max() > 0  # a real gradient, the network spikes
    np.testing.assert_allclose(g["w_in"], bptt.eprop_gradient_feedforward(net, x, target), rtol=1e-12, atol=1e-12)


def test_bptt_matches_finite_differences():
    """With the smooth spike function BPTT is the exact gradient of all weights (central differences)."""
    net, x, target = _tiny("sigmoid", recurrent=True)
    g = bptt.bptt_gradient(net, x, target)
    h = 1e-6
    for name in ("w_in", "w_rec", "w_out"):
        w = getattr(net, name)
        for idx in [(0, 0), (1, 2), (2, 1)]:
            if idx[0] >= w.shape[0] or idx[1] >= w.shape[1]:
                continue
            old = w[idx]
            w[idx] = old + h
            up = bptt.loss(net, x, target)
            w[idx] = old - h
            down = bptt.loss(net, x, target)
            w[idx] = old
            assert g[name][idx] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8), (name, idx)


def test_bptt_history_grows_with_T():
    from eprop_plugins.tasks import make_task

    sizes = []
    for T in (200, 400):
        net, x, target = bptt.network_from_scenario(make_task("sine", iterations=1, sequence_steps=T))
        sizes.append(bptt.bptt_gradient(net, x, target)["history_bytes"])
    assert sizes[1] == 2 * sizes[0]


def _assert_same(a, b):
    """Bit-identical losses, traces, weights and weight events."""
    np.testing.assert_array_equal(a.losses, b.losses)
    for group in ("traces", "weights", "weight_events"):
        ga, gb = getattr(a, group), getattr(b, group)
        assert ga.keys() == gb.keys(), group
        for k in ga:
            np.testing.assert_array_equal(np.asarray(ga[k]), np.asarray(gb[k]), err_msg=f"{group}/{k}")


@pytest.mark.parametrize("name", ["orig-rec-mse-gd", "event-rec-mse-gd"])
def test_nestml_identical_across_threads(name):
    """NEST local_num_threads 1 and 2 (the ``threads`` option of ``nestml``) give the same numbers."""
    from nest_models.backend import run
    from validation import scenario_library as library

    sc = library.get(name)[0]
    one, two = run(sc, threads=1), run(sc, threads=2)
    assert two.meta["threads"] == 2
    _assert_same(one, two)


@pytest.mark.parametrize("name", ["orig-rec-sparse10", "event-rec-sparse10"])
def test_nest_builtin_two_threads_equal_one_to_rounding(name):
    """NEST's built-in models through the NEST wiring (what the bench's threads section runs), 1 and 2 threads.

    Not bit-identical (last-bit differences in v from the first steps with input): with 2 threads
    NEST delivers the spikes arriving at a neuron in the same step in another order, and the sum
    rounds differently (the NESTML neurons are bit-identical above; why was not investigated).
    Spikes and weight events are identical, traces agree to 1e-12.
    """
    from eprop_plugins.backends import nest_wiring as nw
    from validation import scenario_library as library

    sc = library.get(name)[0].validated()
    one, two = (nw.run(sc, nw.layout(sc.family), backend="nest-builtin", threads=k) for k in (1, 2))
    assert two.meta["threads"] == 2 and one.traces["z"].sum() > 0
    np.testing.assert_array_equal(one.traces["z"], two.traces["z"])
    np.testing.assert_allclose(two.losses, one.losses, rtol=1e-12)
    for k in one.traces:
        a = np.asarray(one.traces[k], float)
        np.testing.assert_allclose(np.asarray(two.traces[k], float), a, rtol=1e-12, atol=1e-12 * np.abs(a).max(),
                                   err_msg=k)
    for k in ("step", "proj", "pre", "post"):
        np.testing.assert_array_equal(one.weight_events[k], two.weight_events[k])
    np.testing.assert_allclose(two.weight_events["w"], one.weight_events["w"], rtol=1e-12)


@pytest.mark.slow
def test_brian2_standalone_identical_across_threads():
    """Brian2 cpp_standalone openmp_threads 1 and 2 give the same numbers (compiles one binary per count)."""
    from brian2_ext.runner import run_scenario
    from validation import scenario_library as library

    sc = library.get("orig-rec-mse-gd")[0]
    one, two = (run_scenario(sc, mode="standalone", threads=k, backend="brian2-standalone") for k in (1, 2))
    _assert_same(one, two)


def test_measure_records_a_failure_instead_of_raising():
    """A backend that fails (here: at a size it cannot build, an unknown name) gives a row with ``error``."""
    from eprop_plugins.bench import measure

    row = measure({"backend": "no-such-backend", "task": "sine", "family": "original", "iterations": 2})
    assert "no-such-backend" in row["error"] and "per_iteration_s" not in row
    row = measure({"backend": "nest-builtin", "task": "sparse", "family": "original", "iterations": 2,
                   "n_rec": 0, "density": 0.1})
    assert row["error"]


def test_sparse_scaling_network_has_no_dense_matrix():
    from eprop_plugins import connectivity as cn
    from eprop_plugins.bench import sparse_scaling

    sc = sparse_scaling("event", 300, iterations=2)
    for w in (sc.w_in, sc.w_rec, sc.w_out):
        assert cn.is_sparse(w)
    assert abs(sc.w_rec.density - 0.1) < 0.01 and sc.n_iterations == 2


def test_bench_quick_writes_json_and_plots(tmp_path):
    """``eprop bench --quick`` runs every section and writes bench.json with the documented fields and PNGs."""
    import subprocess
    import sys

    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "eprop_plugins.cli", "bench", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "bench.json").read_text())
    assert report["schema"] == "eprop-bench/3"
    for key in ("started", "finished", "machine", "notes", "plan", "iteration", "memory", "memory_summary",
                "scaling", "threads", "goals", "plots"):
        assert key in report, key
    for key in ("cpu", "cores", "load_average_start", "load_average_end", "versions"):
        assert key in report["machine"], key
    it = report["iteration"]
    assert {r["backend"] for r in it} >= {"nest-builtin", "nestml", "brian2-standalone", "reference"}
    for r in it:
        assert r["per_iteration_s"]["median"] > 0 and r["errors"] == []
        assert {"min", "max", "n"} <= r["per_iteration_s"].keys()
        assert r["ratio_vs_nest_builtin"] > 0
    assert next(r for r in it if r["backend"] == "nest-builtin")["ratio_vs_nest_builtin"] == 1.0
    for r in report["memory"] + report["scaling"] + report["threads"]:
        assert "error" not in r, r
        assert r["peak_rss_mb"] >= r["baseline_rss_mb"] > 0 and len(r["load_average"]) == 3
    assert {r["backend"] for r in report["memory"]} >= {"bptt", "nest-builtin", "nest-builtin/no-recorders"}
    assert all(r["losses_equal_to_nest_builtin"] for r in report["memory"]
               if r["backend"] == "nest-builtin/no-recorders")
    assert {r["n_rec"] for r in report["scaling"]} == {100, 200} and all(r["density"] == 0.1 for r in report["scaling"])
    assert all(r["losses_identical_across_threads"] for r in report["threads"] if r["backend"] == "nestml")
    assert all(r["losses_max_rel_diff_across_threads"] < 1e-12 for r in report["threads"])
    assert {r["threads"] for r in report["threads"]} == {1, 2}
    assert all(g["met"] in (True, False, None) and g["goal"] for g in report["goals"])
    assert len(report["plots"]) == 3
    for p in report["plots"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
