"""pyNN.nest with the e-prop types: the ``pynn-nest`` backend against the reference and ``nestml``, the sine
example against NEST 3.10's published losses, weights through ``Projection.get/set``, sparse
connectivity, and PyNN-style errors for wrong use.

Every test runs the real simulator (a skipped or missing pyNN.nest is a failure).  NEST runs in this
process; the example runs in a subprocess (its own kernel).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyNN.nest as sim  # noqa: I001 - the simulator first: pynn_ext then loads its glue
import pynn_ext
from eprop_plugins import backends, reference
from eprop_plugins.parameters import ParameterError
from eprop_plugins.reference_numbers import SINE_ORIGINAL_NEST
from eprop_plugins.scenario import load
from pynn_ext import Adam, EpropIF, EpropIFAdaptive, EpropReadout, EpropSynapse, FeedbackSynapse, GradientDescent
from pynn_ext import nest as glue
from validation.compare import compare_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from pynn_poisson import poisson_rate_task  # noqa: E402 - the example script, shared by both simulators

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "validation" / "scenarios"

#: every validation scenario except the long tasks (``eprop validate`` runs those) and the n/a ones:
#: both families, all recurrent models, one and several populations, MSE and cross-entropy, GD and Adam
BACKEND_SCENARIOS = sorted(p.stem for p in SCENARIOS.glob("*.json")
                           if not p.stem.startswith("task-") and not p.stem.endswith("-symmetric"))


def test_pynn_nest_imports_and_the_types_bind():
    assert "pynn_ext.nest" in sys.modules  # loaded by importing pynn_ext after pyNN.nest
    sim.setup(timestep=1.0)
    pop = sim.Population(3, EpropIF(tau_m=20.0))
    assert isinstance(pop, glue.EpropPopulation)
    assert pop.get("tau_m") == 20.0
    usable, why = backends.status("pynn-nest")
    assert usable, why
    assert "pynn-nest" in backends.names()


@pytest.mark.parametrize("name", BACKEND_SCENARIOS)
def test_backend_matches_reference_and_nestml(name):
    sc = load(SCENARIOS / f"{name}.json")
    got = backends.run("pynn-nest", sc, record_weight_events=True)
    ref = reference.run(sc)
    cmp = compare_results(sc.validated(), ref, got)
    assert cmp.status == "pass", cmp.summary()
    assert np.array_equal(got.traces["z"], ref.traces["z"])  # spikes identical
    nestml = backends.run("nestml", sc, record_weight_events=True)
    for key in nestml.traces:
        np.testing.assert_array_equal(got.traces[key], nestml.traces[key], err_msg=key)
    for key in nestml.weight_events:
        np.testing.assert_array_equal(got.weight_events[key], nestml.weight_events[key], err_msg=key)
    assert got.meta["seconds"] > 0 and "compile_seconds" in got.meta


def test_symmetric_feedback_is_not_applicable():
    sc = load(SCENARIOS / "orig-rec-symmetric.json").validated()
    assert "symmetric" in backends.unsupported("pynn-nest", sc)
    with pytest.raises(ParameterError, match="symmetric"):
        backends.run("pynn-nest", sc)


def test_sine_example_reproduces_nest_losses(tmp_path):
    out = tmp_path / "sine.npz"
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "pynn_sine.py"), "--simulator", "nest",
                          "--save", str(out)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    data = np.load(out)
    np.testing.assert_allclose(data["losses"], SINE_ORIGINAL_NEST, rtol=1e-8, atol=0)
    w_rec = data["w_rec"]
    assert np.isnan(np.diag(w_rec)).all() and np.isfinite(w_rec[~np.eye(100, dtype=bool)]).all()
    assert data["w_in"].shape == (100, 100) and data["w_out"].shape == (100, 1)


def _small_network(family="original", connector=None, seed=3, n_in=6, n_rec=5, eta=1e-2, eta_out=None):
    rng = np.random.default_rng(seed)
    sim.setup(timestep=1.0)
    times = [sim.Sequence(np.sort(rng.choice(np.arange(2, 60), 8, replace=False)).astype(float)) for _ in range(n_in)]
    inputs = sim.Population(n_in, sim.SpikeSourceArray(spike_times=times))
    extra = {"sequence": 20.0} if family == "original" else {}
    rec = sim.Population(n_rec, EpropIF(family=family, v_thresh=-60.0), label="rec")
    out = sim.Population(1, EpropReadout(family=family, tau_m=20.0, v_rest=0.0, **extra), label="out")
    out.set(target=sim.Sequence(np.sin(np.arange(80) / 5.0)))
    opt = Adam(eta=eta)
    w_in = rng.normal(5.0, 2.0, (n_in, n_rec))
    w_rec = rng.normal(0.0, 2.0, (n_rec, n_rec))
    p_in = sim.Projection(inputs, rec, sim.AllToAllConnector(), EpropSynapse(optimizer=opt, weight=w_in))
    p_rec = sim.Projection(rec, rec, connector or sim.AllToAllConnector(allow_self_connections=False),
                           EpropSynapse(optimizer=opt, weight=w_rec))
    opt_out = opt if eta_out is None else Adam(eta=eta_out)
    p_out = sim.Projection(rec, out, sim.AllToAllConnector(), EpropSynapse(optimizer=opt_out, weight=0.5))
    sim.Projection(out, rec, sim.AllToAllConnector(), FeedbackSynapse(weight=rng.normal(0, 1, (1, n_rec))))
    return inputs, rec, out, (p_in, p_rec, p_out), (w_in, w_rec)


def test_projection_get_and_set_weights():
    _, _, _, (p_in, p_rec, p_out), (w_in, w_rec) = _small_network()
    assert len(p_in) == w_in.size and len(p_rec) == w_rec.size - len(w_rec)
    np.testing.assert_array_equal(p_in.get("weight", format="array"), w_in)  # mV, no unit factor
    got = p_rec.get("weight", format="array")
    assert np.isnan(np.diag(got)).all()
    off = ~np.eye(len(w_rec), dtype=bool)
    np.testing.assert_array_equal(got[off], w_rec[off])
    as_list = p_in.get("weight", format="list")
    assert len(as_list) == w_in.size and all(w == w_in[i, j] for i, j, w in as_list)
    p_out.set(weight=np.arange(5.0)[:, None])
    np.testing.assert_array_equal(p_out.get("weight", format="array")[:, 0], np.arange(5.0))
    p_in.set(weight=1.25)
    assert (p_in.get("weight", format="array") == 1.25).all()


def test_projections_sharing_a_synapse_model_see_only_their_own_connections():
    # recurrent and readout projections of one EpropSynapse object share a NEST model and their source
    # population; reading weights before the readout projection exists, and after the sorting of NEST's
    # connection tables at the first run, must still give each projection exactly its own connections
    n_rec = 10
    sim.setup(timestep=1.0)
    inputs = sim.Population(4, sim.SpikeSourceArray(spike_times=[sim.Sequence([2.0, 7.0 + k]) for k in range(4)]))
    rec = sim.Population(n_rec, EpropIF(v_thresh=-60.0), label="rec")
    out = sim.Population(1, EpropReadout(tau_m=20.0, v_rest=0.0, sequence=20.0), label="out")
    syn = EpropSynapse(optimizer=Adam(eta=1e-2), weight=1.0)
    sim.Projection(inputs, rec, sim.AllToAllConnector(), EpropSynapse(optimizer=Adam(eta=1e-2), weight=6.0))
    conn = sim.FixedProbabilityConnector(0.3, allow_self_connections=False, rng=sim.NumpyRNG(seed=7))
    p_rec = sim.Projection(rec, rec, conn, syn)
    existing = ~np.isnan(p_rec.get("weight", format="array"))
    assert 0 < existing.sum() < n_rec * (n_rec - 1) and not existing.diagonal().any()
    p_out = sim.Projection(rec, out, sim.AllToAllConnector(), syn)
    sim.Projection(out, rec, sim.AllToAllConnector(), FeedbackSynapse(weight=1.0))
    assert p_rec.nest_synapse_model == p_out.nest_synapse_model  # the case where lookups could mix
    rng = np.random.default_rng(1)
    w_rec, w_out = rng.normal(0.0, 1.0, (n_rec, n_rec)), rng.normal(0.0, 1.0, (n_rec, 1))
    p_out.set(weight=w_out)
    first = p_rec.get("weight", format="array")  # read again only now: its connections moved since the first read
    np.testing.assert_array_equal(~np.isnan(first), existing)
    np.testing.assert_array_equal(first[existing], 1.0)
    p_rec.set(weight=w_rec)
    got_rec, got_out = p_rec.get("weight", format="array"), p_out.get("weight", format="array")
    assert got_rec.shape == (n_rec, n_rec) and got_out.shape == (n_rec, 1)
    np.testing.assert_array_equal(~np.isnan(got_rec), existing)  # NaN exactly for the unconnected pairs
    np.testing.assert_array_equal(got_rec[existing], w_rec[existing])
    np.testing.assert_array_equal(got_out, w_out)
    assert len(p_rec) == existing.sum() and len(p_out) == n_rec
    assert sorted((i, j) for i, j, _ in p_rec.get("weight", format="list")) == sorted(zip(*np.nonzero(existing)))
    sim.run(40.0)  # NEST sorts its connection tables before the first step
    after_rec, after_out = p_rec.get("weight", format="array"), p_out.get("weight", format="array")
    # the recurrent neurons spike only in the first update interval (inputs at 2-10 ms), so no update is applied
    # within 40 ms: after the sorting each projection must still read exactly the values set on it
    np.testing.assert_array_equal(~np.isnan(after_rec), existing)
    np.testing.assert_array_equal(after_rec[existing], w_rec[existing])
    np.testing.assert_array_equal(after_out, w_out)
    p_rec.set(weight=0.25)
    np.testing.assert_array_equal(p_rec.get("weight", format="array")[existing], 0.25)
    np.testing.assert_array_equal(p_out.get("weight", format="array"), after_out)  # untouched


def test_readout_projection_with_its_own_optimizer():
    # original family, update interval 20 ms, 40 ms run: the updates applied in the second interval use
    # gradients of the first, which depend only on the initial weights.  The recurrent neurons' dynamics do not
    # depend on the readout weights, so a network whose readout projection alone has eta = 2e-2 must have
    # the input and recurrent weights of the all-1e-2 run and the readout weights of the all-2e-2 run, bit for
    # bit; the two uniform runs differ in every projection, so each assertion could fail
    def weights(eta, eta_out=None):
        _, _, _, projs, _ = _small_network(eta=eta, eta_out=eta_out)
        before = [p.get("weight", format="array") for p in projs]  # readings must not disturb anything
        sim.run(40.0)
        return before, [p.get("weight", format="array") for p in projs]

    start, slow = weights(1e-2)
    _, fast = weights(2e-2)
    before, mixed = weights(1e-2, eta_out=2e-2)
    for b, s in zip(before, start):
        np.testing.assert_array_equal(b, s)
    for k in range(3):
        assert np.nanmax(np.abs(fast[k] - slow[k])) > 1e-3, k  # each projection learned, at its eta
    np.testing.assert_array_equal(mixed[0], slow[0])
    np.testing.assert_array_equal(mixed[1], slow[1])
    np.testing.assert_array_equal(mixed[2], fast[2])


def test_recording_through_pynn_has_units():
    _, rec, out, (p_in, _, _), _ = _small_network(family="event")
    rec.record(["spikes", "v", "psi", "learning_signal"])
    out.record(["v", "target", "error"])
    before = p_in.get("weight", format="array")
    sim.run(60.0)
    seg = rec.get_data().segments[0]
    units = {s.name: str(s.units.dimensionality) for s in seg.analogsignals}
    assert units == {"v": "mV", "psi": "1/mV", "learning_signal": "mV"}
    assert sum(len(s) for s in seg.spiketrains) > 0
    target = out.get_data().segments[0].filter(name="target")[0]
    assert np.abs(np.asarray(target)).max() > 0.5
    assert not np.array_equal(p_in.get("weight", format="array"), before)  # it learned


def test_sparse_projection_learns_only_on_existing_synapses():
    conn = sim.FixedProbabilityConnector(0.3, allow_self_connections=False, rng=sim.NumpyRNG(seed=7))
    inputs, rec, out, (p_in, p_rec, p_out), _ = _small_network(connector=conn, n_rec=10)
    before = p_rec.get("weight", format="array")
    existing = ~np.isnan(before)
    assert 0 < existing.sum() < 90 and len(p_rec) == existing.sum()
    sim.run(60.0)
    after = p_rec.get("weight", format="array")
    np.testing.assert_array_equal(~np.isnan(after), existing)  # no synapse appeared
    assert not np.array_equal(after[existing], before[existing])


def test_wrong_use_gives_pynn_style_errors():
    sim.setup(timestep=1.0)
    inputs = sim.Population(2, sim.SpikeSourceArray(spike_times=[5.0]))
    rec = sim.Population(2, EpropIF(), label="rec")
    out = sim.Population(1, EpropReadout(), label="out")
    plain = sim.Population(2, sim.IF_curr_exp(), label="plain")
    with pytest.raises(sim.errors.ConnectionError, match="delay = 2.0 ms"):
        sim.Projection(inputs, rec, sim.AllToAllConnector(), EpropSynapse(weight=1.0, delay=2.0))
    with pytest.raises(sim.errors.ConnectionError, match="postsynaptic population 'plain'.*IF_curr_exp"):
        sim.Projection(inputs, plain, sim.AllToAllConnector(), EpropSynapse(weight=1.0))
    with pytest.raises(sim.errors.ConnectionError, match="FeedbackSynapse: presynaptic population 'rec'"):
        sim.Projection(rec, rec, sim.AllToAllConnector(), FeedbackSynapse(weight=1.0))
    with pytest.raises(sim.errors.ConnectionError, match="EpropSynapse: presynaptic population 'out'"):
        sim.Projection(out, rec, sim.AllToAllConnector(), EpropSynapse(weight=1.0))
    with pytest.raises(ParameterError, match="family = 'event'.*family 'original'"):
        sim.Population(2, EpropIFAdaptive(family="event"))
    with pytest.raises(sim.errors.ConnectionError, match="StaticSynapse: postsynaptic population 'rec'.*e-prop"):
        sim.Projection(inputs, rec, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    with pytest.raises(sim.errors.NonExistentParameterError, match="tau_x.*valid parameters.*tau_m"):
        rec.set(tau_x=3.0)
    p_in = sim.Projection(inputs, rec, sim.AllToAllConnector(), EpropSynapse(weight=1.0))
    with pytest.raises(ParameterError, match="delay = 2.0 ms"):
        p_in.set(delay=2.0)
    with pytest.raises(sim.errors.NonExistentParameterError, match="'tau_mem'.*tau_m"):
        EpropIF(tau_mem=3.0)
    with pytest.raises(ParameterError, match="eprop_models"):
        sim.setup(timestep=1.0, eprop_models="brian2")


def test_builtin_models_are_an_option():
    sim.setup(timestep=1.0, eprop_models="nest")
    pop = sim.Population(2, EpropIF(family="event"))
    assert pop.celltype.nest_name["on_grid"] == "eprop_iaf"
    sim.setup(timestep=1.0)
    assert sim.Population(2, EpropIF(family="event")).celltype.nest_name["on_grid"] == "eprop_iaf_neuron"


def test_gradient_descent_and_adam_share_a_network():
    sim.setup(timestep=1.0)
    inputs = sim.Population(2, sim.SpikeSourceArray(spike_times=[5.0]))
    rec = sim.Population(2, EpropIF())
    a = sim.Projection(inputs, rec, sim.AllToAllConnector(), EpropSynapse(optimizer=Adam(eta=1e-3), weight=1.0))
    b = sim.Projection(rec, rec, sim.AllToAllConnector(allow_self_connections=False),
                       EpropSynapse(optimizer=GradientDescent(eta=1e-3), weight=1.0))
    assert a.nest_synapse_model != b.nest_synapse_model  # one NEST model (common properties) per optimizer
    import nest

    assert nest.GetDefaults(b.nest_synapse_model)["optimizer"]["optimizer"] == "gradient_descent"
    assert nest.GetDefaults(a.nest_synapse_model)["optimizer"]["optimizer"] == "adam"
    assert pynn_ext.GLUE["pyNN.nest"] == "pynn_ext.nest"


def test_poisson_input_online_learning():
    losses = poisson_rate_task(sim)
    first, last = losses[:10].mean(), losses[-10:].mean()
    # the best output blind to the input rate (0.5 throughout) costs 0.5 * 200 * 0.3^2 = 9 per trial
    assert last < 0.5 * first and last < 9.0, (first, last)


def test_one_type_object_for_two_populations():
    sim.setup(timestep=1.0)
    cell = EpropReadout(family="original", v_rest=0.0)
    a = sim.Population(1, cell, label="a")
    b = sim.Population(2, cell, label="b")
    a.set(target=sim.Sequence([0.0, 1.0, 1.0]))
    b.set(tau_m=7.0)
    assert [list(v) for v in a.eprop_signals["target"]] == [[0.0, 1.0, 1.0]]
    assert [len(v) for v in b.eprop_signals["target"]] == [0, 0]  # b keeps its own (empty) target
    assert a.get("tau_m") == 10.0 and b.get("tau_m") == 7.0  # PyNN simplifies homogeneous values


def test_usual_connectors():
    sim.setup(timestep=1.0)
    inputs = sim.Population(4, sim.SpikeSourceArray(spike_times=[5.0, 9.0]))
    rec = sim.Population(4, EpropIF())
    one = sim.Projection(inputs, rec, sim.OneToOneConnector(), EpropSynapse(weight=np.diag(np.arange(1.0, 5.0))))
    assert len(one) == 4
    np.testing.assert_array_equal(np.diag(one.get("weight", format="array")), np.arange(1.0, 5.0))
    listed = sim.Projection(rec, rec, sim.FromListConnector([(0, 1, 0.5, 1.0), (2, 3, -0.25, 1.0)]),
                            EpropSynapse())
    assert sorted(listed.get("weight", format="list")) == [(0, 1, 0.5), (2, 3, -0.25)]
    pre = sim.Projection(inputs, rec, sim.FixedNumberPreConnector(2, rng=sim.NumpyRNG(seed=1)),
                         EpropSynapse(weight=2.0))
    assert len(pre) == 8 and (np.sum(~np.isnan(pre.get("weight", format="array")), axis=0) == 2).all()
