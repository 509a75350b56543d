"""The PyNN sine example maps onto a virtual SpiNNaker board with the project's sPyNNaker model classes.

sPyNNaker lives in its own environment (``.venv-spinnaker``, created here on first use by
:mod:`pynn_ext.spinnaker.environment`, about a minute); the example runs there in a subprocess,
in a fresh working directory and with an empty ``$HOME``.  What is checked against the kernel
itself (the host build of ``pynn_ext/spinnaker/c``, compiled by :mod:`pynn_ext.spinnaker.host`):
the neurons per core (the kernel's ``eprop_neurons_per_core``), the region sizes (the kernel's
``sizeof``) and the region contents (the fixed-point data the host build gets for the same task).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import tasks
from pynn_ext.spinnaker import environment, fixed_point, host
from pynn_ext.spinnaker.kernel_params import NEURON_PARAMS, kernel_network

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "pynn_sine.py"
#: eprop_host_sizeof codes of the structs (pynn_ext/spinnaker/c/eprop_host_original.c)
SIZEOF_CODES = {"neuron_params_t": 0, "neuron_t": 1, "readout_params_t": 2, "readout_t": 3,
                "eprop_syn_trace_t": 4, "eprop_plastic_synapse_t": 5, "eprop_optimizer_params_t": 6,
                "eprop_synapse_params_t": 7}
#: the example's leading zeros of the target: its element j is the target of the readout at t = j dt
READOUT_LAG = 4


def _clean_environ(home: Path) -> dict[str, str]:
    """The process environment with an empty ``$HOME`` and no XDG, Python or virtual-environment settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ``pynn_sine.py --simulator spinnaker`` (one iteration) in sPyNNaker's environment."""
    python = environment.ensure()  # creates .venv-spinnaker when it is missing: never skipped
    home, run = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("run")
    real_home = Path.home() / ".spynnaker.cfg"
    before = real_home.stat().st_mtime_ns if real_home.exists() else None
    env = _clean_environ(home)
    proc = subprocess.run([str(python), str(EXAMPLE), "--simulator", "spinnaker", "--iterations", "1"],
                          cwd=run, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (real_home.stat().st_mtime_ns if real_home.exists() else None) == before  # the real $HOME too
    summaries = sorted(run.glob("reports/*/run_*/eprop_mapping.json"))
    assert len(summaries) == 1, list(run.rglob("*"))[:20]
    scenario = tasks.sine(family="original", iterations=1).validated()
    lib, _ = host.load()
    return {"proc": proc, "home": home, "run": run, "summary": json.loads(summaries[0].read_text()),
            "net": kernel_network(scenario), "scenario": scenario, "lib": lib}


def _cores(mapped: dict, role: str) -> list[dict]:
    return [c for c in mapped["summary"]["cores"] if c["role"] == role]


def test_environment_is_complete_and_pinned(mapped):
    assert environment.is_ready()
    marker = json.loads((environment.environment_path() / environment.MARKER).read_text())
    assert marker["requirement"] == environment.SPYNNAKER == "spynnaker==1!7.4.1"
    assert marker["versions"]["spynnaker"] == "1!7.4.1" and marker["versions"]["pyNN"] == "0.13.0"


def test_incomplete_or_stale_environment_is_not_ready(tmp_path):
    """No marker (an interrupted creation) or another fingerprint (a changed pin): created afresh."""
    env = tmp_path / ".venv-spinnaker"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    assert not environment.is_ready(env)
    (env / environment.MARKER).write_text(json.dumps({"fingerprint": "0" * 16}))
    assert not environment.is_ready(env)
    (env / environment.MARKER).write_text(json.dumps({"fingerprint": environment.fingerprint()}))
    assert environment.is_ready(env)


def test_virtual_board_config_in_working_directory_not_home(mapped):
    config = (mapped["run"] / ".spynnaker.cfg").read_text()
    assert "[Machine]" in config and "virtual_board = True" in config and "version = 5" in config
    assert not (mapped["home"] / ".spynnaker.cfg").exists()
    assert not list(mapped["home"].rglob("*spynnaker*")), list(mapped["home"].rglob("*"))
    assert mapped["summary"]["virtual_board"] is True
    # the example ends cleanly and says why there are no losses; the missing binaries are only a warning
    assert "recorded data is empty" in mapped["proc"].stdout
    assert "Ignoring executable not found as using virtual" in mapped["proc"].stderr


def test_placements_neurons_per_core_from_the_kernels_dtcm_budget(mapped):
    sc = mapped["scenario"]
    n_pre, fan_in = sc.n_in + sc.n_rec, sc.n_in + sc.n_rec - 1  # all-to-all, no autapses
    per_core = int(mapped["lib"].eprop_neurons_per_core(n_pre, fan_in, sc.n_out, False))
    assert per_core == 19  # the C kernel's own budget for the sine task (upstream e-prop branch: 8)
    recurrent = _cores(mapped, "recurrent")
    assert [c["n_atoms"] for c in recurrent] == [per_core] * (sc.n_rec // per_core) + [sc.n_rec % per_core]
    assert [c["lo_atom"] for c in recurrent] == list(range(0, sc.n_rec, per_core))
    # traces advanced per step: 100 inputs + 99 recurrent synapses per neuron (docs: ~1000 per 1 ms in real time)
    assert [c["synapses"] for c in recurrent] == [c["n_atoms"] * fan_in for c in recurrent]
    assert len({(c["x"], c["y"], c["p"]) for c in mapped["summary"]["cores"]}) == mapped["summary"]["n_cores"] == 7
    (readout,) = _cores(mapped, "readout")
    assert readout["n_atoms"] == sc.n_out == 1
    assert {c["binary"] for c in recurrent} == {"eprop_original_recurrent_eprop_gd.aplx"}
    assert readout["binary"] == "eprop_original_readout_eprop_gd.aplx"
    # the readout's errors are routed, on their own partition, to every recurrent core and only there
    (route,) = mapped["summary"]["error_routes"].values()
    reached = {(tuple(map(int, xy.split(","))), p) for xy, cores in route["cores"].items() for p in cores}
    assert reached == {((c["x"], c["y"]), c["p"]) for c in recurrent}


def test_region_sizes_are_the_kernels_struct_sizes(mapped):
    sizeof = {name: int(mapped["lib"].eprop_host_sizeof(code)) for name, code in SIZEOF_CODES.items()}
    assert mapped["summary"]["struct_sizes"] == sizeof  # the header as sPyNNaker lays it out == C's sizeof
    n_out, target_steps = 1, mapped["summary"]["target_steps"]["readout"]
    assert target_steps == mapped["scenario"].n_steps + READOUT_LAG
    for core in _cores(mapped, "recurrent"):
        assert core["regions"]["neuron_params"] == core["n_atoms"] * (
            sizeof["neuron_params_t"] + sizeof["neuron_t"] + 4 * n_out)
    (readout,) = _cores(mapped, "readout")
    assert readout["regions"]["neuron_params"] == sizeof["readout_params_t"] + sizeof["readout_t"] + 4 * target_steps
    for core in mapped["summary"]["cores"]:  # one word (sPyNNaker's back-propagation flag), then the two structs
        assert core["regions"]["synapse_dynamics"] == 4 + sizeof["eprop_synapse_params_t"] + sizeof[
            "eprop_optimizer_params_t"]
        # every synapse of the core has its eprop_plastic_synapse_t in the SDRAM rows
        n_synapses = core["n_atoms"] * (200 if core["role"] == "recurrent" else 100)
        assert core["regions"]["synaptic_matrix"] >= n_synapses * sizeof["eprop_plastic_synapse_t"]


def test_region_contents_are_the_host_kernels_data(mapped):
    net, sc = mapped["net"], mapped["scenario"]
    for core in _cores(mapped, "recurrent"):
        lo, n = core["lo_atom"], core["n_atoms"]
        data = bytes.fromhex(core["contents"]["neuron_params"])
        size = net.neuron_params.dtype.itemsize
        assert data[:n * size] == net.neuron_params[lo:lo + n].tobytes()
        assert data[n * size:n * (size + 28)] == bytes(n * 28)  # neuron_t: zero at the start
        assert np.array_equal(np.frombuffer(data[n * (size + 28):], "<i4").reshape(n, -1), net.w_fb[lo:lo + n])
        dynamics = bytes.fromhex(core["contents"]["synapse_dynamics"])
        assert dynamics == bytes(4) + net.synapse_params.tobytes() + net.optimizer.tobytes()
    (readout,) = _cores(mapped, "readout")
    data = bytes.fromhex(readout["contents"]["neuron_params"])
    assert data[:24] == net.readout_params.tobytes()
    target = np.frombuffer(data[36:], "<i4")
    assert np.array_equal(target[READOUT_LAG:], net.target[:, 0]) and not target[:READOUT_LAG].any()


def test_first_synaptic_row_holds_the_signed_initial_weights(mapped):
    """Core 0's first row (input 0 -> its 19 neurons): the task's s16.15 weights, NEST's initial optimizer state."""
    net = mapped["net"]
    words = np.frombuffer(bytes.fromhex(_cores(mapped, "recurrent")[0]["contents"]["synaptic_matrix"]), "<u4")
    synapse = np.dtype([("m", "<i8"), ("v", "<i8"), ("weight", "<i4"), ("cumulative", "<i4"),
                        ("one_minus_beta_1_power", "<u4"), ("one_minus_beta_2_power", "<u4"),
                        ("optimization_step", "<u2"), ("target", "<u2")], align=True)
    n_plastic_words = int(words[0])
    row = np.frombuffer(words[1:1 + n_plastic_words].tobytes()[4:], synapse)  # after the row header word
    assert sorted(row["target"].tolist()) == list(range(19))
    assert np.array_equal(row["weight"], net.w_hidden[row["target"], 0])
    assert (row["weight"] < 0).any() and (row["weight"] > 0).any()  # signs survive sPyNNaker's matrix writer
    assert np.array_equal(row["weight"], fixed_point.to_fx(mapped["scenario"].w_in[row["target"], 0]))
    assert not (row["m"].any() or row["v"].any() or row["cumulative"].any())
    assert (row["optimization_step"] == 1).all()
    assert int(words[1 + n_plastic_words]) == 0 and int(words[2 + n_plastic_words]) == 19  # no static, 19 plastic


def test_import_pynn_ext_needs_no_simulator():
    """The sPyNNaker environment has no NEST or Brian2: the package and the example import without them."""
    code = ("import sys, pynn_ext, pynn_ext.spinnaker, pynn_ext.spinnaker.environment; "
            "assert not {'nest', 'brian2', 'spynnaker'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


WRONG_USE = r'''
import pyNN.spiNNaker as sim
from pynn_ext import EpropIF, EpropReadout, EpropSynapse, FeedbackSynapse
from eprop_plugins.parameters import ParameterError

sim.setup(timestep=1.0)
inputs = sim.Population(2, sim.SpikeSourceArray(spike_times=[[2.0], [3.0]]))
rec = sim.Population(3, EpropIF(family="original"))
out = sim.Population(1, EpropReadout(family="original"))
errors = []
for attempt in (lambda: sim.Population(2, EpropIF(family="event")),
                lambda: sim.Projection(inputs, rec, sim.AllToAllConnector(), EpropSynapse(weight=1.0, delay=2.0)),
                lambda: sim.Projection(rec, rec, sim.AllToAllConnector(), FeedbackSynapse(weight=1.0)),
                lambda: sim.Projection(out, rec, sim.AllToAllConnector(), EpropSynapse(weight=1.0))):
    try:
        attempt()
        errors.append("no error")
    except ParameterError as exc:
        errors.append(str(exc))
print("\n".join(errors))
sim.end()
'''


def test_wrong_use_names_the_parameter(tmp_path):
    """On pyNN.spiNNaker as on the other simulators: event family, delay, feedback source, readout as source."""
    python = environment.ensure()
    (tmp_path / "home").mkdir()
    (tmp_path / "run").mkdir()
    env = _clean_environ(tmp_path / "home")
    proc = subprocess.run([str(python), "-c", WRONG_USE], cwd=tmp_path / "run", env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    event, delay, feedback, readout_source = proc.stdout.strip().splitlines()[-4:]
    assert "family = 'event'" in event and "original" in event
    assert "delay = 2.0 ms" in delay
    assert "FeedbackSynapse" in feedback and "EpropReadout" in feedback
    assert "EpropSynapse" in readout_source and "presynaptic" in readout_source


SPARSE_ADAPTIVE = r'''
import numpy as np
import pyNN.spiNNaker as sim
from pyNN.random import NumpyRNG
from pynn_ext import Adam, EpropIFAdaptive, EpropReadout, EpropSynapse, FeedbackSynapse

sim.setup(timestep=1.0)
rng = np.random.default_rng(3)
inputs = sim.Population(20, sim.SpikeSourceArray(spike_times=[sim.Sequence([2.0 + i]) for i in range(20)]))
rec = sim.Population(50, EpropIFAdaptive(family="original", tau_m=20.0, v_thresh=-60.0, c_reg=10.0), label="alif")
out = sim.Population(2, EpropReadout(family="original", sequence=100.0, learning_window=50.0), label="out")
optimizer = Adam(eta=1e-3)
sim.Projection(inputs, rec, sim.FixedProbabilityConnector(0.3, rng=NumpyRNG(seed=1)),
               EpropSynapse(optimizer=optimizer, weight=rng.normal(0, 1, (20, 50))))
sim.Projection(rec, rec, sim.FixedProbabilityConnector(0.1, allow_self_connections=False, rng=NumpyRNG(seed=2)),
               EpropSynapse(optimizer=optimizer, weight=rng.normal(0, 1, (50, 50))))
sim.Projection(rec, out, sim.AllToAllConnector(), EpropSynapse(optimizer=optimizer, weight=rng.normal(0, 1, (50, 2))))
sim.Projection(out, rec, sim.AllToAllConnector(), FeedbackSynapse(weight=rng.normal(0, 1, (2, 50))))
out.set(target=[sim.Sequence(np.sin(np.arange(300) / 10)), sim.Sequence(np.cos(np.arange(300) / 10))])
rec.record(["spikes", "v", "psi", "learning_signal", "adaptation"])
out.record(["v", "target", "error"])
sim.run(300.0)
print("tau_m", rec.get("tau_m"))
sim.end()
'''


def test_sparse_adaptive_adam_network_maps(tmp_path):
    """ALIF neurons, Adam, FixedProbabilityConnector, two readouts: rows, feedback and errors as laid out."""
    python = environment.ensure()
    (tmp_path / "home").mkdir()
    (tmp_path / "run").mkdir()
    binaries = tmp_path / "aplx"  # stand-ins: sPyNNaker only looks them up on a virtual board
    binaries.mkdir()
    for name in ("eprop_original_recurrent_eprop_adam.aplx", "eprop_original_readout_eprop_adam.aplx"):
        (binaries / name).write_bytes(b"")
    env = {**_clean_environ(tmp_path / "home"), "EPROP_SPINNAKER_BINARIES": str(binaries)}
    proc = subprocess.run([str(python), "-c", SPARSE_ADAPTIVE], cwd=tmp_path / "run", env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "executable not found" not in proc.stderr  # found through $EPROP_SPINNAKER_BINARIES
    assert "tau_m 20.0" in proc.stdout and "'target' is not recorded on SpiNNaker" in proc.stderr
    (path,) = (tmp_path / "run").glob("reports/*/run_*/eprop_mapping.json")
    summary = json.loads(path.read_text())
    lib, _ = host.load()
    recurrent = [c for c in summary["cores"] if c["role"] == "recurrent"]
    (readout,) = [c for c in summary["cores"] if c["role"] == "readout"]
    # sparse rows: the row length (24 plastic synapses of 40 bytes in 256 words) binds before the DTCM budget
    assert int(lib.eprop_neurons_per_core(70, 50, 2, True)) > 24
    assert [c["n_atoms"] for c in recurrent] == [24, 24, 2] and readout["n_atoms"] == 2
    assert {c["binary"] for c in recurrent} == {"eprop_original_recurrent_eprop_adam.aplx"}
    n_out, sizeof = 2, {name: int(lib.eprop_host_sizeof(code)) for name, code in SIZEOF_CODES.items()}
    for core in recurrent:
        n = core["n_atoms"]
        assert core["regions"]["neuron_params"] == n * (sizeof["neuron_params_t"] + sizeof["neuron_t"] + 4 * n_out)
        params = np.frombuffer(bytes.fromhex(core["contents"]["neuron_params"])[:n * NEURON_PARAMS.itemsize],
                               NEURON_PARAMS)
        # the adaptive model's rho = exp(-dt/tau_a) and beta (defaults 10 ms, 1 mV), alpha of tau_m = 20 ms
        assert (params["rho"] == fixed_point.to_decay(np.exp(-1.0 / 10.0))).all()
        assert (params["beta"] == fixed_point.to_fx(1.0)).all()
        assert (params["alpha"] == fixed_point.to_decay(np.exp(-1.0 / 20.0))).all()
        optimizer = np.frombuffer(bytes.fromhex(core["contents"]["synapse_dynamics"])[16:56], "<u4")
        assert optimizer[-1] == 1  # kind: Adam
    assert readout["regions"]["neuron_params"] == 2 * (sizeof["readout_params_t"] + sizeof["readout_t"] + 4 * 300)
    (route,) = summary["error_routes"].values()
    reached = {(tuple(map(int, xy.split(","))), p) for xy, cores in route["cores"].items() for p in cores}
    assert reached == {((c["x"], c["y"]), c["p"]) for c in recurrent}
