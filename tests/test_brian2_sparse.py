"""Sparse connectivity on the Brian2 backends (runtime Cython and numpy, cpp_standalone) against the NumPy reference.

Sparse projections (:class:`eprop_plugins.connectivity.SparseWeights`) create only the listed
synapses: traces, synapse traces and weight snapshots equal the reference to 1e-10 relative
(bit-identical in practice), spikes and the (step, projection, pre, post) columns of the weight
events are identical, and an unconnected pair has no synapse, no weight and no weight event.
Which pairs are connected is run-time data: runtime mode compiles nothing for a new pattern, and
cpp_standalone compiles nothing for a new pattern with the same number of synapses per projection.
Real Brian2 throughout (the project's cache; the standalone builds are shared with the validation).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from eprop_plugins import connectivity as cn
from eprop_plugins import reference
from validation import scenario_library as library

from brian2_ext import backend_runtime, backend_standalone, builds
from brian2_ext.runner import run_scenario
from test_brian2_event import assert_equal_to_reference  # the comparison of every Brian2 test (both families)

#: the sparse validation scenarios: 30 neurons, recurrent 10 %, input 30 %, readout 50 % connected
SPARSE = ["orig-rec-sparse10", "orig-rec-sparse-ce", "event-rec-sparse10", "event-rec-sparse-adam"]


def repatterned(sc, proj: str, seed: int = 5):
    """``sc`` with projection ``proj`` connected at other pairs: as many synapses, the recorded ones kept."""
    w = sc.projections()[proj]
    n_post, n_pre = w.shape
    rng = np.random.RandomState(seed)
    keep = {(post, pre) for q, pre, post in sc.record_synapses if q == proj}
    candidates = [(a, b) for a in range(n_post) for b in range(n_pre)
                  if (a, b) not in keep and (proj != "rec" or a != b)]
    chosen = [candidates[k] for k in rng.permutation(len(candidates))[: w.n_connections - len(keep)]]
    pairs = np.array(sorted(keep) + chosen)
    new = cn.SparseWeights.from_pairs(w.shape, pairs[:, 0], pairs[:, 1], rng.permutation(w.weight))
    assert new.n_connections == w.n_connections and not np.array_equal(cn.connection_keys(new), cn.connection_keys(w))
    return dataclasses.replace(sc, name=f"{sc.name}-repatterned", **{f"w_{proj}": new})


@pytest.mark.parametrize("name", SPARSE)
def test_cython_sparse_equals_reference(name):
    sc = library.build(name)
    assert any(cn.is_sparse(w) for w in sc.projections().values())
    assert_equal_to_reference(backend_runtime.run(sc), reference.run(sc))


def test_numpy_target_sparse_equals_reference():
    sc = library.build("orig-rec-sparse10")
    assert_equal_to_reference(run_scenario(sc, mode="numpy"), reference.run(sc))


@pytest.mark.parametrize("name", ["orig-rec-sparse10", "event-rec-sparse10"])
def test_symmetric_feedback_with_sparse_readout(name):
    """B = w on the readout synapses (0 for the pairs without one); the dense w_fb snapshots equal the reference's."""
    sc = library.build(name)
    sc = dataclasses.replace(sc, network={**sc.network, "feedback": "symmetric"}).validated()
    res = backend_runtime.run(sc)
    assert res.weights["w_fb"].shape == (sc.n_sequences, sc.n_rec, sc.n_out)
    assert_equal_to_reference(res, reference.run(sc))


@pytest.mark.parametrize("name", ["orig-rec-sparse10", "event-rec-sparse-adam",
                                  pytest.param("orig-rec-sparse-ce", marks=pytest.mark.slow),
                                  pytest.param("event-rec-sparse10", marks=pytest.mark.slow)])
def test_standalone_sparse_equals_reference(name):
    sc = library.build(name)
    assert_equal_to_reference(backend_standalone.run(sc), reference.run(sc))


@pytest.mark.slow
def test_standalone_two_threads_sparse_equals_reference():
    """OpenMP with 2 threads: Brian2's flat loops over the listed synapses give the same numbers."""
    sc = library.build("orig-rec-sparse10")
    res = run_scenario(sc, mode="standalone", threads=2, backend="brian2-standalone")
    assert_equal_to_reference(res, reference.run(sc))


def test_unconnected_pairs_have_no_synapse_weight_or_event():
    import brian2 as b2

    from brian2_ext.config import configure
    from brian2_ext.network import EpropNetwork, structure_of
    from brian2_ext.network_common import network_synapses

    sc = library.build("orig-rec-sparse10").validated()
    res = backend_runtime.run(sc)
    configure("cython")
    b2.set_device("runtime")
    m = EpropNetwork(structure_of(sc), sc.dt, sc.record_synapses, network_synapses(sc))
    for code, (proj, w) in enumerate(sc.projections().items()):
        post, pre, _ = cn.connections(w)
        s = {"in": m.s_in, "rec": m.s_rec, "out": m.s_out}[proj]
        # Brian2 holds exactly the listed synapses
        assert len(s) == w.n_connections < w.shape[0] * w.shape[1]
        assert sorted(zip(s.j[:].tolist(), s.i[:].tolist())) == list(zip(post.tolist(), pre.tolist()))
        # snapshots: one weight per synapse, in the canonical order
        assert res.weights[f"w_{proj}"].shape == (sc.n_sequences, w.n_connections)
        np.testing.assert_array_equal(res.weight_connections[f"w_{proj}"], np.stack([post, pre]))
        # events only on listed pairs, and an unconnected pair whose presynaptic neuron spikes has none
        ev = res.weight_events["proj"] == code
        ev_pairs = set(zip(res.weight_events["post"][ev].tolist(), res.weight_events["pre"][ev].tolist()))
        assert ev_pairs and ev_pairs <= set(zip(post.tolist(), pre.tolist()))
        spiking = set(res.weight_events["pre"][ev].tolist())
        mask = cn.mask_of(w, autapses=proj != "rec")
        missing = [(a, b) for a, b in zip(*np.nonzero(~mask)) if b in spiking and (proj != "rec" or a != b)]
        assert missing and not ev_pairs & set(missing)


@pytest.mark.parametrize("proj", ["in", "rec", "out"])
def test_projection_without_synapses(proj):
    """An empty connection list: no Synapses object for it; the rest equals the reference."""
    sc = library.build("orig-rec-sparse10")
    empty = cn.SparseWeights(sc.projections()[proj].shape, [], [], [])
    sc = dataclasses.replace(sc, record_synapses=[s for s in sc.record_synapses if s[0] != proj],
                             **{f"w_{proj}": empty}).validated()
    res = backend_runtime.run(sc)
    assert res.weights[f"w_{proj}"].shape == (sc.n_sequences, 0)
    assert not np.any(res.weight_events["proj"] == ("in", "rec", "out").index(proj))
    assert_equal_to_reference(res, reference.run(sc), events=proj != "in")  # no input: no spike


def test_full_connection_list_equals_dense_matrix():
    """Every pair listed: the same results as the dense matrix (same synapse order; grid vs flat loop)."""
    dense = library.build("event-rec-mse-gd").validated()
    listed = dataclasses.replace(dense, **{f"w_{p}": cn.from_dense(w, np.ones(np.shape(w), bool), autapses=p != "rec")
                                          for p, w in dense.projections().items()})
    a, b = backend_runtime.run(dense), backend_runtime.run(listed)
    for group in ("traces", "synapse_traces"):
        for name, want in getattr(a, group).items():
            assert np.array_equal(getattr(b, group)[name], want), (group, name)
    for key, snaps in a.weights.items():
        if key == "w_fb":
            assert np.array_equal(b.weights[key], snaps)
            continue
        post, pre = b.weight_connections[key]
        assert np.array_equal(b.weights[key], snaps[:, post, pre]), key
    for name in a.weight_events:
        assert np.array_equal(b.weight_events[name], a.weight_events[name]), name


def test_new_pattern_needs_no_compile():
    sc = library.build("orig-rec-sparse10").validated()
    other = repatterned(repatterned(sc, "rec"), "in", seed=6).validated()
    # runtime mode: connections and their number are run-time data (one Cython module set);
    # cpp_standalone: the number of synapses is compiled in, which pairs they connect is not
    for mode, backend in (("cython", backend_runtime), ("standalone", backend_standalone)):
        assert builds.build_key(other, mode) == builds.build_key(sc, mode)
        backend.run(sc)
        assert backend.is_built(other)
        res = backend.run(other)
        assert res.meta["cached"] and res.meta["compile_seconds"] == 0.0, mode
        assert_equal_to_reference(res, reference.run(other))
    # a different number of synapses is another standalone structure, the same runtime code
    fewer = dataclasses.replace(sc, w_rec=cn.SparseWeights(sc.w_rec.shape, sc.w_rec.post[1:], sc.w_rec.pre[1:],
                                                           sc.w_rec.weight[1:]), record_synapses=[
        s for s in sc.record_synapses if s[0] != "rec" or (s[2], s[1]) != (sc.w_rec.post[0], sc.w_rec.pre[0])])
    fewer = fewer.validated()
    assert builds.build_key(fewer, "standalone") != builds.build_key(sc, "standalone")
    assert builds.build_key(fewer, "cython") == builds.build_key(sc, "cython")


_BIG_RUN = """
import json, resource, sys, threading, time
from eprop_plugins.random_scenarios import sparse_network
from brian2_ext import backend_standalone

family, n, p = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sc = sparse_network(family, n, p, steps=1000, n_sequences=2)  # every projection sparse, no n x n array
binary_kb = [0]


def watch():  # peak RSS of the standalone binary (a child's ru_maxrss counts the parent's pages at fork)
    import os
    while not done:
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if fields["Name"].strip() == "main" and int(fields["PPid"]) == os.getpid():
                    binary_kb[0] = max(binary_kb[0], int(fields["VmHWM"].split()[0]))
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.05)


done = False
threading.Thread(target=watch, daemon=True).start()
t0 = time.perf_counter()
res = backend_standalone.run(sc, record=False)
seconds = time.perf_counter() - t0
done = True
print(json.dumps({"synapses": sc.w_rec.n_connections, "losses": [float(x) for x in res.losses], "seconds": seconds,
                  "compile_seconds": res.meta["compile_seconds"], "run_seconds": res.meta["run_seconds"],
                  "seconds_per_iteration": res.meta["seconds_per_iteration"],
                  "peak_python_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_binary_mb": binary_kb[0] / 1024}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("family", ["original", "event"])
def test_5000_neurons_at_10_percent_on_standalone(family):
    """5 000 recurrent neurons, 10 % connected (2.5 M recurrent synapses; input and readout 10 % too), two
    1000-step iterations, losses only: no dense 5 000 x 5 000 array (200 MB) anywhere."""
    out = subprocess.run([sys.executable, "-c", _BIG_RUN, family, "5000", "0.1"], check=True, capture_output=True,
                         text=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    print(family, stats)
    assert 2.4e6 < stats["synapses"] < 2.6e6
    assert np.all(np.isfinite(stats["losses"]))
    # the process holds the connection list (2.5 M x (2 indices + 1 weight)) and Brian2's copies of it
    assert 0 < stats["peak_binary_mb"] < 500 and stats["peak_python_mb"] < 1000, stats
