"""Sparse projections: the in-memory form, the scenario format /2, its checks, the reference and NEST.

Unconnected pairs must stay unconnected: no synapse in NEST, no weight in a snapshot, no weight
event, and the connected synapses compute exactly what the dense network's would.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from eprop_plugins import connectivity as cn
from eprop_plugins import reference
from eprop_plugins.backends import nest_builtin
from eprop_plugins.backends import nest_wiring as nw
from eprop_plugins.parameters import ParameterError
from eprop_plugins.random_scenarios import random_connections, random_scenario, sparse_network
from eprop_plugins.results import Result
from eprop_plugins.scenario import FORMAT, FORMATS, Scenario, load
from nest_models import backend as nestml
from validation import scenario_library as lib
from validation.compare import compare_results

SPARSE_LIBRARY = ("orig-rec-sparse10", "orig-rec-sparse-ce", "event-rec-sparse10", "event-rec-sparse-adam")


# ------------------------------------------------------------------------------------ connectivity
def test_canonical_order_is_row_major_for_both_forms():
    w = np.arange(12.0).reshape(3, 4)
    post, pre, weight = cn.connections(w)
    np.testing.assert_array_equal(post * 4 + pre, np.arange(12))
    np.testing.assert_array_equal(weight, w.ravel())
    sp = cn.from_dense(w, np.ones_like(w, bool))
    for a, b in zip(cn.connections(sp), (post, pre, weight)):
        np.testing.assert_array_equal(a, b)
    # unsorted pairs are sorted; positions map back; the diagonal is dropped for w_rec
    sp = cn.SparseWeights.from_pairs((3, 3), [2, 0, 1], [0, 2, 1], [1.0, 2.0, 3.0])
    assert sp.post.tolist() == [0, 1, 2] and sp.pre.tolist() == [2, 1, 0] and sp.weight.tolist() == [2.0, 3.0, 1.0]
    assert cn.connection_index(sp, [2, 0], [0, 2]).tolist() == [2, 0]
    with pytest.raises(KeyError, match="post 0, pre 0"):
        cn.connection_index(sp, [0], [0])
    assert cn.has_connections(sp, [0, 0], [2, 1]).tolist() == [True, False]
    assert cn.connections(np.ones((3, 3)), autapses=False)[0].size == 6
    with pytest.raises(ParameterError, match="appears twice"):
        cn.SparseWeights.from_pairs((3, 3), [1, 1], [0, 0], 1.0)
    assert not sp.weight.flags.writeable, "shared arrays are read-only"
    big = cn.SparseWeights((5000, 5000), [0], [1], [1.0])
    with pytest.raises(ParameterError, match="DENSE_LIMIT"):
        cn.to_dense(big)


def test_random_connections_draw_rows_without_a_dense_matrix():
    rng = np.random.default_rng(3)
    post, pre = random_connections(rng, (300, 300), 0.1, autapses=False)
    sp = cn.SparseWeights((300, 300), post, pre, np.ones(post.size))
    cn.validate_structure("w_rec", sp, (300, 300), autapses=False)  # sorted, unique, no autapse
    assert abs(sp.density - 0.1) < 0.01 and np.all(np.bincount(post, minlength=300) >= 1)


# ------------------------------------------------------------------------------------ format
def _sparse() -> Scenario:
    return lib.build("event-rec-sparse10")


def test_json_and_npz_files_round_trip(tmp_path):
    sc = _sparse().validated()
    for name in ("a.json", "a.npz"):
        back = load(sc.save(tmp_path / name))
        for key in ("w_in", "w_rec", "w_out"):
            a, b = getattr(sc, key), getattr(back, key)
            assert cn.is_sparse(b) and a.shape == b.shape
            for x, y in zip(cn.connections(a), cn.connections(b)):
                np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(back.target, sc.target)
        np.testing.assert_array_equal(back.w_fb, sc.w_fb)
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["format"] == FORMAT == FORMATS[1] and set(doc["w_rec"]) == {"shape", "post", "pre", "weight"}


def test_dense_scenarios_are_still_written_as_format_1():
    """A saved dense library file (format /1) is exactly what to_dict writes today."""
    name = "orig-rec-mse-gd"
    saved = json.loads(lib.saved(name).read_text())
    assert saved["format"] == FORMATS[0]
    assert json.loads(json.dumps(lib.build(name).to_dict())) == saved


def _refused(d: dict, field: str, arrays=None) -> str:
    with pytest.raises(ParameterError) as info:
        Scenario.from_dict(d, arrays)
    assert str(info.value).startswith(field), str(info.value)
    return str(info.value)


@pytest.mark.parametrize("change,field", [
    (lambda w: w["post"].__setitem__(0, 30), "w_rec.post[0] = 30: allowed range is 0 <= post <= 29"),
    (lambda w: w["pre"].__setitem__(0, -1), "w_rec.pre[0] = -1"),
    (lambda w: w["pre"].__setitem__(1, w["pre"][0]) if w["post"][1] == w["post"][0] else None, "w_rec.post[1], "),
    (lambda w: (w["pre"].reverse(), w["post"].reverse()), "w_rec.post[1], w_rec.pre[1]"),
    (lambda w: w["weight"].__setitem__(3, float("nan")), "w_rec.weight[3] = nan"),
    (lambda w: w["weight"].__setitem__(3, 1e6), "w_rec.weight[3] = 1000000.0 mV (post"),
    (lambda w: w["pre"].__setitem__(2, 1.0), "w_rec.pre[2] = 1.0: allowed values are integer indices"),
    (lambda w: w["weight"].pop(), "w_rec.weight: 86 entries for 87"),
    (lambda w: w.pop("shape"), "w_rec.shape: missing"),
    (lambda w: w.__setitem__("shape", [30, 31]), "w_rec.shape = [30, 31]: does not match"),
    (lambda w: w.__setitem__("extra", 1), "w_rec.extra: unknown key"),
])
def test_sparse_fields_are_checked_strictly(change, field):
    d = copy.deepcopy(_sparse().to_dict())
    change(d["w_rec"])
    _refused(d, field)


def test_autapses_unlisted_recordings_and_format_mismatches_are_refused():
    d = copy.deepcopy(_sparse().to_dict())
    w = d["w_rec"]
    k = next(i for i in range(len(w["post"])) if w["pre"][i] > w["post"][i])
    w["pre"][k] = w["post"][k]  # still sorted (pre was above post), now an autapse
    if k + 1 < len(w["post"]) and w["post"][k + 1] == w["post"][k] and w["pre"][k + 1] <= w["pre"][k]:
        pytest.skip("the change broke the order first")
    _refused(d, f"w_rec.post[{k}] = w_rec.pre[{k}]")
    d = copy.deepcopy(_sparse().to_dict())
    post, pre = d["w_in"]["post"], d["w_in"]["pre"]
    listed = set(zip(post, pre))
    missing = next((j, i) for j in range(30) for i in range(12) if (j, i) not in listed)
    d["record_synapses"] = [["in", missing[1], missing[0]]]
    _refused(d, "record_synapses[0]")
    d = copy.deepcopy(_sparse().to_dict())
    d["format"] = FORMATS[0]
    _refused(d, "w_in = ")  # a /1 file has dense matrices only
    d = copy.deepcopy(_sparse().to_dict())
    d["w_rec"]["weight"] = {"npz": "w_rec.weight"}
    _refused(d, "w_rec.weight = {'npz'")  # archive references only inside a .npz archive
    _refused(d, "w_rec.weight = {'npz'", arrays={})
    d = copy.deepcopy(_sparse().to_dict())
    d["w_fb"] = {"shape": [30, 2], "post": [0], "pre": [0], "weight": [1.0]}
    _refused(d, "w_fb: a sparse connection list")


# ------------------------------------------------------------------------------------ reference
@pytest.mark.parametrize("family", ["original", "event"])
def test_a_list_of_every_pair_computes_exactly_the_dense_network(family):
    dense = random_scenario(family, 1, connectivity="dense").validated()
    sparse = copy.deepcopy(dense)
    sparse.w_in = cn.from_dense(dense.w_in, np.ones(dense.w_in.shape, bool))
    sparse.w_rec = cn.from_dense(dense.w_rec, np.ones(dense.w_rec.shape, bool), autapses=False)
    sparse.w_out = cn.from_dense(dense.w_out, np.ones(dense.w_out.shape, bool))
    a, b = reference.run(dense), reference.run(sparse)
    for key in a.traces:
        np.testing.assert_array_equal(a.traces[key], b.traces[key], err_msg=key)
    for key in a.synapse_traces:
        np.testing.assert_array_equal(a.synapse_traces[key], b.synapse_traces[key], err_msg=key)
    for key in a.weight_events:
        np.testing.assert_array_equal(a.weight_events[key], b.weight_events[key], err_msg=key)
    np.testing.assert_array_equal(a.losses, b.losses)
    for key in ("w_in", "w_rec", "w_out"):
        post, pre = b.weight_connections[key]
        np.testing.assert_array_equal(a.weights[key][:, post, pre], b.weights[key], err_msg=key)
        assert b.weights[key].shape == (dense.n_sequences, post.size)


@pytest.mark.parametrize("family", ["original", "event"])
def test_the_reference_runs_a_large_sparse_network_without_a_dense_matrix(family):
    """5 000 neurons, 5 synapses each: Python's allocations never grow by a dense n_rec x n_rec bool matrix.

    (Per-synapse state costs ~40 float64 per synapse; at 0.1 % connectivity that is far below the
    25 MB of one dense bool matrix, so any dense intermediate would show.)
    """
    import tracemalloc

    sc = sparse_network(family, 5000, 0.001, n_in=20, steps=20, n_sequences=1).validated()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        res = reference.run(sc, record_weight_events=False)
        growth = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert growth < sc.n_rec * sc.n_rec, f"{growth / 1e6:.0f} MB"
    assert res.traces["z"].sum() > 0 and res.weights["w_rec"].shape == (1, sc.w_rec.n_connections)


# ------------------------------------------------------------------------------------ unconnected pairs
def _unconnected(sc, proj: str, ref=None) -> tuple[int, int]:
    """A (post, pre) pair that the projection does not list; with ``ref``, one whose pre transmits spikes."""
    w = sc.projections()[proj]
    n_post, n_pre = w.shape
    listed = set(zip(w.post.tolist(), w.pre.tolist()))
    pres = range(n_pre)
    if ref is not None:
        ev = ref.weight_events
        pres = np.unique(ev["pre"][ev["proj"] == ("in", "rec", "out").index(proj)]).tolist()
    for pre in pres:
        for post in range(n_post):
            if (post, pre) not in listed and not (proj == "rec" and post == pre):
                return post, pre
    raise AssertionError("fully connected")


@pytest.mark.parametrize("name", ["orig-rec-sparse10", "event-rec-sparse10"])
def test_an_unconnected_pair_has_no_synapse_no_weight_and_no_weight_event(name):
    sc, _ = lib.get(name)
    ref = reference.run(sc)
    results = {"reference": ref, "nest-builtin": nest_builtin.run(sc), "nestml": nestml.run(sc)}
    for p, proj in enumerate(("in", "rec", "out")):
        w = sc.projections()[proj]
        post, pre = _unconnected(sc, proj, ref)
        for backend, res in results.items():
            ev = res.weight_events
            sel = ev["proj"] == p
            assert sel.any(), (backend, proj)
            pairs = set(zip(ev["post"][sel].tolist(), ev["pre"][sel].tolist()))
            assert (post, pre) not in pairs, f"{backend}: event on the unconnected pair {proj} {post}<-{pre}"
            assert pairs <= set(zip(w.post.tolist(), w.pre.tolist())), f"{backend}: events on unlisted pairs"
            # the presynaptic neuron did transmit spikes (to its listed targets)
            assert np.any(ev["pre"][sel] == pre), (backend, proj, pre)
        # the reference's snapshots hold the listed synapses only
        key = f"w_{proj}"
        np.testing.assert_array_equal(ref.weight_connections[key], np.stack([w.post, w.pre]))
        with pytest.raises(KeyError):
            cn.connection_index(w, [post], [pre])
        assert not np.array_equal(ref.weights[key][-1], w.weight), f"{key}: the listed synapses learn"
    # NEST creates exactly the listed synapses
    nest = nw.import_nest()
    nw.reset_kernel(sc)
    net = nw.create_network(sc, nw.layout(sc.family), record_weight_events=False)
    model = net.layout.models["synapse"]
    for proj, src, tgt in (("in", net.parrots, net.recurrent), ("rec", net.recurrent, net.recurrent),
                           ("out", net.recurrent, net.readouts)):
        w = sc.projections()[proj]
        conns = nest.GetConnections(source=src, target=tgt, synapse_model=model)
        got = {k: np.atleast_1d(np.asarray(v)) for k, v in conns.get(["source", "target", "weight"]).items()}
        pairs = np.stack([got["target"] - tgt[0].global_id, got["source"] - src[0].global_id])
        order = np.lexsort((pairs[1], pairs[0]))
        np.testing.assert_array_equal(pairs[:, order], np.stack([w.post, w.pre]), err_msg=proj)
        np.testing.assert_array_equal(got["weight"][order], w.weight, err_msg=proj)


@pytest.mark.parametrize("name", SPARSE_LIBRARY)
def test_sparse_library_scenarios_pass_on_both_nest_backends(name):
    sc, _ = lib.get(name)
    ref = reference.run(sc)
    assert ref.traces["z"].sum() > 1000
    for mod in (nest_builtin, nestml):
        cmp = compare_results(sc, ref, mod.run(sc))
        assert cmp.status == "pass", cmp.summary()
        assert {"spikes", "traces/v", "weight_events/w", "losses"} <= {q.name for q in cmp.quantities
                                                                       if q.status == "pass"}


# ------------------------------------------------------------------------------------ comparison
def test_the_comparison_checks_sparse_snapshots_pair_by_pair():
    sc = lib.build("orig-rec-sparse10").validated()
    ref = reference.run(sc)
    assert compare_results(sc, ref, ref).status == "pass"
    # a backend reporting dense matrices for a sparse projection: compared on the listed pairs
    post, pre = ref.weight_connections["w_rec"]
    dense = np.zeros((sc.n_sequences, sc.n_rec, sc.n_rec))
    dense[:, post, pre] = ref.weights["w_rec"]
    other = Result(**{**ref.__dict__, "weights": {**ref.weights, "w_rec": dense}, "weight_connections": {}})
    cmp = compare_results(sc, ref, other)
    assert cmp.status == "pass", cmp.summary()
    # ... and fails if an unconnected pair holds a weight
    j, i = _unconnected(sc, "rec")
    dense[1, j, i] = 0.5
    q = {q.name: q for q in compare_results(sc, ref, other).quantities}["weights/w_rec"]
    assert q.status == "fail" and f"unconnected pair post {j}, pre {i}" in q.note
    # other connection lists are named
    wrong = Result(**{**ref.__dict__, "weight_connections": {**ref.weight_connections,
                                                             "w_rec": ref.weight_connections["w_rec"][:, ::-1]}})
    q = {q.name: q for q in compare_results(sc, ref, wrong).quantities}["weights/w_rec"]
    assert q.status == "fail" and "not the scenario's" in q.note
