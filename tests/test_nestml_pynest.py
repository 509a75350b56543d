"""The PyNEST helpers (nest_models.pynest.add_eprop) on NEST networks as their users write them.

* the example (NEST's tutorial network: a poisson_generator into 100 parrots, 100 iaf_psc_delta,
  sparse static recurrence) trains online, and the replay of its recorded input as a scenario equals
  the NumPy reference (spikes and weight events identical, traces to 1e-10) in both families;
* frozen inputs (spike_generator, spike_train_injector) next to live parrots; two populations of
  different models and parameters with the connectivity their rules drew;
* what cannot be taken over is refused with a ParameterError naming the node or connection.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import connectivity as cn
from eprop_plugins import reference
from eprop_plugins.parameters import ParameterError
from eprop_plugins.scenario import load
from nest_models import backend
from validation.compare import compare_results

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "nest_existing_network.py"


def _example():
    spec = importlib.util.spec_from_file_location("nest_existing_network", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _user_connections(nest, sources, targets):
    """The user's (post, pre, weight) by position, in the canonical order."""
    st = nest.GetConnections(source=sources, target=targets).get(["source", "target", "weight"])
    post = np.asarray(st["target"]) - targets[0].global_id
    pre = np.asarray(st["source"]) - sources[0].global_id
    order = np.lexsort((pre, post))
    return post[order], pre[order], np.asarray(st["weight"], dtype=float)[order]


def _assert_replay_matches(eprop, result, rtol=1e-10):
    sc = eprop.scenario
    ref = reference.run(sc)
    cmp = compare_results(sc, ref, result, rtol=rtol)
    assert cmp.status == "pass", cmp.summary()
    assert np.array_equal(ref.traces["z"], result.traces["z"])
    return ref, cmp


def test_tutorial_network_trains_online_and_its_replay_equals_the_reference(tmp_path):
    import nest

    eprop, result = _example().main(iterations=20, record_weight_events=True)
    sc = eprop.scenario
    parrots = nest.GetNodes({"model": "parrot_neuron"})[:100]  # the user's (created before the e-prop ones)
    neurons = nest.GetNodes({"model": "iaf_psc_delta"})[:100]
    assert (sc.family, sc.n_in, sc.n_rec, sc.n_sequences) == ("original", 100, 100, 20)
    assert eprop.live.all() and eprop.recurrent.get("model")[0] == "eprop_iaf_bsshslm_2020_neuron"
    # connectivity kept as connected: the drawn recurrent synapses and their weights, nothing else
    assert cn.is_sparse(sc.w_rec) and not cn.is_sparse(sc.w_in)
    post, pre, w = _user_connections(nest, neurons, neurons)
    assert 800 < post.size < 1200  # pairwise_bernoulli, p = 0.1
    np.testing.assert_array_equal(sc.w_rec.post, post)
    np.testing.assert_array_equal(sc.w_rec.pre, pre)
    np.testing.assert_array_equal(sc.w_rec.weight, w)
    post, pre, w = _user_connections(nest, parrots, neurons)
    np.testing.assert_array_equal(sc.w_in[post, pre], w)
    # the e-prop network created exactly the user's recurrent synapses
    assert len(nest.GetConnections(source=eprop.recurrent, target=eprop.recurrent)) == sc.w_rec.n_connections
    # the recorded live input: Poisson spikes, none at a sequence start (the original family drops those)
    steps = np.concatenate(sc.input_spikes)
    assert 0.9 * 8000 < steps.size < 1.1 * 8000  # 100 parrots at 20 Hz for 4 s
    assert np.all(steps % sc.steps_per_sequence != 0)
    # the online run equals the reference on its replay: spikes, weight events, traces
    ref, cmp = _assert_replay_matches(eprop, result)
    ev = result.weight_events
    rec = ev["proj"] == 1
    assert rec.any() and cn.has_connections(sc.w_rec, ev["post"][rec], ev["pre"][rec]).all()
    np.testing.assert_allclose(result.losses, ref.losses, rtol=1e-10, atol=0.0)
    # it learned online: the loss of the last five iterations well below that of the first five
    assert result.losses[-5:].mean() < 0.7 * result.losses[:5].mean(), result.losses
    # the replay scenario is an ordinary file: saved, loaded and run on the nestml backend it is the online run
    path = sc.save(tmp_path / "tutorial.npz")
    again = backend.run(load(path), record_weight_events=False)
    for name in ("z", "v", "psi", "learning_signal", "readout_v"):
        np.testing.assert_array_equal(again.traces[name], result.traces[name], err_msg=name)


@pytest.mark.parametrize("threads", [1, 2])
def test_tutorial_network_event_family_replay_equals_the_reference(threads):
    import nest

    module = _example()
    parrots, neurons = module.build_tutorial_network(family="event", threads=threads)
    spikes = nest.Create("spike_recorder")  # the user's own recording of the parrots
    nest.Connect(parrots, spikes)
    iterations, steps = 5, 200
    target = np.tile(1.0 + 0.5 * np.sin(np.linspace(0.0, 2.0 * np.pi, steps)), iterations)[None, :]
    lam = np.tile(np.arange(steps) >= steps // 2, iterations).astype(float)
    from nest_models.pynest import add_eprop

    eprop = add_eprop(parrots, neurons, target, sequence=float(steps), family="event",
                      learning_window_signal=lam, **module.SETTINGS["event"]["add_eprop"])
    result = eprop.train()
    sc = eprop.scenario
    assert eprop.recurrent.get("model")[0] == "eprop_iaf_psc_delta_neuron"
    assert sc.populations[0].params["v_reset"] == -0.5 and cn.is_sparse(sc.w_rec)
    # a parrot repeats the two spikes its generator may send in one step; the e-prop input has one
    ev = spikes.events
    pairs = np.stack([ev["senders"], np.rint(ev["times"]).astype(np.int64)], axis=1)
    assert len(np.unique(pairs, axis=0)) < len(pairs)
    user = [np.unique(pairs[pairs[:, 0] == p.global_id, 1]) for p in parrots]
    for i in range(sc.n_in):  # the user's parrot spike at stamp s reaches the e-prop neurons in step s
        np.testing.assert_array_equal(sc.input_spikes[i], user[i][user[i] < sc.n_steps])
    _assert_replay_matches(eprop, result)
    assert nest.local_num_threads == threads


def _frozen_and_live_inputs(nest, rng, n_steps):
    """3 spike_generators, 3 spike_train_injectors and 2 parrots fed by a spike_generator."""
    trains = [np.unique(rng.integers(1, n_steps, 40)).astype(float) for _ in range(8)]
    gens = nest.Create("spike_generator", 3, [{"spike_times": t} for t in trains[:3]])
    injectors = nest.Create("spike_train_injector", 3, [{"spike_times": t} for t in trains[3:6]])
    feeders = nest.Create("spike_generator", 2, [{"spike_times": t} for t in trains[6:]])
    parrots = nest.Create("parrot_neuron", 2)
    nest.Connect(feeders, parrots, "one_to_one")
    return gens + injectors + parrots, trains


def test_spike_generator_and_spike_train_injector_inputs_next_to_live_parrots():
    import nest

    from nest_models.pynest import add_eprop, install

    nest.ResetKernel()
    nest.set(resolution=1.0, rng_seed=3, print_time=False)
    install()
    T, n_seq = 100, 4
    rng = np.random.default_rng(3)
    inputs, trains = _frozen_and_live_inputs(nest, rng, T * n_seq)
    # the original family drops input in the first step of a sequence: keep the frozen trains off it
    for node, t in zip(inputs[:6], trains[:6]):
        node.set(spike_times=t[(t - 1) % T != 0])
    neurons = nest.Create("iaf_psc_delta", 20, {"E_L": 0.0, "V_m": 0.0, "V_th": 0.03, "V_reset": 0.0,
                                                 "C_m": 1.0, "tau_m": 20.0, "t_ref": 2.0})
    nest.Connect(inputs, neurons, {"rule": "fixed_indegree", "indegree": 4, "allow_multapses": False}, {"weight": 0.05})
    nest.Connect(neurons, neurons, {"rule": "fixed_outdegree", "outdegree": 3, "allow_autapses": False,
                                    "allow_multapses": False},
                 {"weight": nest.random.uniform(-0.05, 0.05)})
    target = np.tile(np.sin(np.linspace(0.0, 2.0 * np.pi, T)), n_seq)[None, :]
    eprop = add_eprop(inputs, neurons, target, sequence=float(T), record_weight_events=True,
                      recurrent={"c_reg": 0.0}, optimizer={"type": "gradient_descent", "eta": 5e-3})
    before = eprop.scenario
    np.testing.assert_array_equal(eprop.live, [False] * 6 + [True] * 2)
    # frozen inputs: their trains are in the scenario before the run (a spike at t ms arrives in step t - 1)
    for i in range(6):
        np.testing.assert_array_equal(before.input_spikes[i], np.asarray(inputs[i].get("spike_times")) - 1)
    assert before.input_spikes[6].size == 0 and before.populations[0].params["tau_refrac"] == 2.0
    assert cn.is_sparse(before.w_in) and before.w_in.n_connections == 20 * 4
    result = eprop.train()
    sc = eprop.scenario
    for i in range(6):
        np.testing.assert_array_equal(sc.input_spikes[i], before.input_spikes[i])
    with pytest.raises(RuntimeError, match="trained already"):
        eprop.train()
    # a parrot fed at t emits at t + 1: its spikes reach the e-prop neurons in step t + 1
    for i in (6, 7):
        want = trains[i] + 1
        np.testing.assert_array_equal(sc.input_spikes[i], want[(want % T != 0) & (want < T * n_seq)])
    assert result.traces["z"].sum() > 0
    _assert_replay_matches(eprop, result)


def test_two_populations_of_different_models_keep_their_parameters_and_connections():
    import nest

    from nest_models.pynest import add_eprop, install

    nest.ResetKernel()
    nest.set(resolution=1.0, rng_seed=5, print_time=False)
    install()
    T, n_seq = 100, 3
    rng = np.random.default_rng(5)
    inputs = nest.Create("spike_generator", 10, [
        {"spike_times": np.unique(rng.integers(1, T * n_seq, 30)).astype(float)} for _ in range(10)])
    fast = nest.Create("iaf_psc_delta", 12, {"E_L": 0.0, "V_m": 0.0, "V_th": 0.5, "V_reset": -0.5, "tau_m": 20.0,
                                             "C_m": 1.0, "t_ref": 0.0})
    slow = nest.Create("iaf_psc_delta", 8, {"E_L": 0.0, "V_m": 0.0, "V_th": 0.4, "V_reset": -0.2, "tau_m": 40.0,
                                            "C_m": 1.0, "t_ref": 1.0})
    nest.Connect(inputs, fast + slow, {"rule": "pairwise_bernoulli", "p": 0.5}, {"weight": 0.6})
    nest.Connect(fast, fast, {"rule": "pairwise_bernoulli", "p": 0.2, "allow_autapses": False}, {"weight": 0.3})
    nest.Connect(fast[:8], slow, "one_to_one", {"weight": 0.4})
    nest.Connect(slow, fast, "all_to_all", {"weight": -0.2})
    target = np.tile(np.sin(np.linspace(0.0, 2.0 * np.pi, T)), n_seq)[None, :]
    common = {"surrogate_gradient_height": 10.0, "surrogate_gradient_width": 0.03, "c_reg": 0.01, "f_target": 10.0,
              "kappa": 0.97, "kappa_reg": 0.97}
    eprop = add_eprop(inputs, [fast, slow], target, sequence=float(T), family="event",
                      model=["iaf_psc_delta", "iaf_psc_delta_adapt"],
                      recurrent=[common, {**common, "beta": 0.5, "tau_a": 200.0}],
                      readout={"tau_m": 30.0, "cm": 0.001, "v_rest": 0.0}, record_weight_events=True,
                      optimizer={"type": "gradient_descent", "eta": 1e-3, "optimize_each_step": True})
    sc = eprop.scenario
    a, b = sc.populations
    assert (a.model, a.size, b.model, b.size) == ("iaf_psc_delta", 12, "iaf_psc_delta_adapt", 8)
    assert (a.params["v_thresh"], a.params["v_reset"], a.params["tau_m"], a.params["tau_refrac"]) == (0.5, -0.5, 20, 0)
    assert (b.params["v_thresh"], b.params["v_reset"], b.params["tau_m"], b.params["tau_refrac"]) == (0.4, -0.2, 40, 1)
    assert b.params["beta"] == 0.5 and eprop.net.populations[1].get("model")[0] == "eprop_iaf_psc_delta_adapt_neuron"
    w = cn.to_dense(sc.w_rec)
    np.testing.assert_array_equal(w[12:, :8], 0.4 * np.eye(8))  # one_to_one fast[:8] -> slow
    np.testing.assert_array_equal(w[:12, 12:], -0.2)  # all_to_all slow -> fast
    assert np.all(w[12:, 12:] == 0) and cn.is_sparse(sc.w_rec)
    result = eprop.train()
    assert result.traces["z"][:, :12].sum() > 0 and result.traces["z"][:, 12:].sum() > 0
    _assert_replay_matches(eprop, result)


def _kernel():
    import nest

    from nest_models.pynest import install

    nest.ResetKernel()
    nest.set(resolution=1.0, print_time=False)
    install()
    return nest


def _refused(nest, inputs, population, match, **kwargs):
    from nest_models.pynest import network_scenario

    with pytest.raises(ParameterError, match=match):
        network_scenario(inputs, population, np.zeros((1, 100)), sequence=50.0, **kwargs)


def test_what_cannot_be_taken_over_is_refused_naming_node_and_reason():
    from nest_models.pynest import network_scenario

    nest = _kernel()
    gens = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    pop = nest.Create("iaf_psc_delta", 3)
    noise = nest.Create("poisson_generator", 1)
    _refused(nest, noise, pop, rf"inputs: node {noise.global_id} \(poisson_generator, a stimulator\) cannot be an "
             "input: it sends every target its own spike train")
    sine = nest.Create("inhomogeneous_poisson_generator")
    _refused(nest, sine, pop, rf"inputs: node {sine.global_id} \(inhomogeneous_poisson_generator, a stimulator\) "
             "cannot be an input: it sends every target its own spike train")
    dc = nest.Create("dc_generator")
    _refused(nest, dc, pop, rf"inputs: node {dc.global_id} \(dc_generator, a stimulator\) cannot be an input: it "
             "sends currents")
    rec = nest.Create("spike_recorder")
    _refused(nest, rec, pop, rf"inputs: node {rec.global_id} \(spike_recorder, a recorder\) cannot be an input: it "
             "is not a spike source")
    _refused(nest, pop[:1], pop, rf"inputs: node {pop[0].global_id} is also a neuron of the populations")
    for recorder in ("multimeter", "voltmeter", "spike_recorder"):  # recorders only read: accepted
        device = nest.Create(recorder)
        nest.Connect(pop, device) if recorder == "spike_recorder" else nest.Connect(device, pop)
    assert network_scenario(gens, pop, np.zeros((1, 100)), sequence=50.0).n_rec == 3
    dc = nest.Create("dc_generator")
    nest.Connect(dc, pop[1])
    _refused(nest, gens, pop, rf"population: node {dc.global_id} \(dc_generator\) -> {pop[1].global_id} cannot be "
             "taken over: it is neither one of the inputs nor a neuron")

    nest = _kernel()
    gens = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    pop = nest.Create("iaf_psc_delta", 3)
    nest.Connect(gens, pop, syn_spec={"delay": 2.0})
    _refused(nest, gens, pop, rf"inputs -> population: the connection {gens[0].global_id} -> {pop[0].global_id} "
             r"\(static_synapse\) has delay 2 ms; e-prop's connections have a delay of one step: allowed 1 ms")

    nest = _kernel()
    gens = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    pop = nest.Create("iaf_psc_delta", 3)
    nest.Connect(pop[0], pop[1])
    nest.Connect(pop[0], pop[1])
    _refused(nest, gens, pop, rf"population -> population: {pop[0].global_id} -> {pop[1].global_id} is connected "
             "more than once")

    nest = _kernel()
    gens = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    pop = nest.Create("iaf_psc_delta", 3)
    nest.Connect(pop[2], pop[2])
    _refused(nest, gens, pop, rf"population -> population: node {pop[2].global_id} is connected to itself")

    nest = _kernel()
    gens = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    pop = nest.Create("iaf_psc_delta", 3)
    pop[1].set(V_th=-50.0)
    _refused(nest, gens, [pop[:1], pop[1:]], rf"population\[1\]: V_th of neuron {pop[2].global_id} is -55, of neuron "
             rf"{pop[1].global_id} -50; a scenario population has one parameter set")
    _refused(nest, gens, [pop[:1], pop[1:]], "model: 3 values for 2 populations", model=["iaf"] * 3)

    nest = _kernel()
    twice = nest.Create("spike_generator", 1, {"spike_times": [3.0, 4.0], "spike_multiplicities": [1, 2]})
    offgrid = nest.Create("spike_generator", 1, {"spike_times": [3.5], "precise_times": True})
    pop = nest.Create("iaf_psc_delta", 3)
    _refused(nest, twice, pop, rf"inputs: node {twice.global_id} \(spike_generator\) has spike_multiplicities\[1\] = 2")
    late = nest.Create("spike_generator", 1, {"spike_times": [3.0, 101.0]})
    start = nest.Create("spike_generator", 1, {"spike_times": [51.0]})
    _refused(nest, late, pop, rf"inputs: node {late.global_id} \(spike_generator\) spikes at 101 ms, which arrives "
             "after the 100 simulated steps")
    _refused(nest, start, pop, rf"inputs: node {start.global_id} \(spike_generator\) spikes at 51 ms, which arrives "
             "in the first step of a sequence")
    assert network_scenario(start, pop, np.zeros((1, 100)), sequence=50.0, family="event").input_spikes[0] == [50]
    _refused(nest, offgrid, pop, rf"inputs: node {offgrid.global_id} \(spike_generator\) has the spike time 3.5 ms off "
             "the simulation grid")


def test_learning_windows_of_the_other_family_are_refused():
    nest = _kernel()
    inputs = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    population = nest.Create("iaf_psc_delta", 3)
    _refused(nest, inputs, population, "learning_window: the event family takes a per-step", family="event",
             learning_window=5.0)
    _refused(nest, inputs, population, "learning_window_signal: only the event family",
             learning_window_signal=np.ones(100))
    _refused(nest, inputs, population, "family = 'events': allowed values are original, event", family="events")
    _refused(nest, inputs, population, "exists only in family event", model="iaf_psc_delta")


def test_add_eprop_needs_the_module_installed_first():
    import nest

    from nest_models.pynest import add_eprop

    nest.ResetKernel()
    inputs = nest.Create("spike_generator", 2, {"spike_times": [3.0]})
    population = nest.Create("iaf_psc_delta", 3)
    with pytest.raises(ParameterError, match=r"call nest_models\.pynest\.install\(\) right after nest\.ResetKernel"):
        add_eprop(inputs, population, np.zeros((1, 10)), sequence=10.0)
