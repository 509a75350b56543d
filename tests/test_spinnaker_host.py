"""The ``spinnaker-host`` backend: the SpiNNaker e-prop kernel (s16.15) compiled for this machine.

* bit for bit equal to the NumPy emulation of the same integer arithmetic, on every original-family
  validation scenario (every recorded trace, weight and spike);
* against the float64 reference: spikes identical up to the stated horizon, every trace, weight and
  loss before it within the stated tolerance (pynn_ext/spinnaker/tolerance.py); the measured
  horizon is the stated one (a kernel change that moves it must update the statement);
* the tasks' first five losses (after the horizon) stay within 2 % of the reference;
* the validation runner reports the backend with its own tolerance.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from eprop_plugins import backends, reference
from pynn_ext import backend_spinnaker_host as backend
from pynn_ext.spinnaker import emulation, host, kernel_params
from pynn_ext.spinnaker import fixed_point as fx
from pynn_ext.spinnaker import tolerance as tol
from validation import scenario_library as library
from validation.compare import compare_results
from validation.runner import run_validation

ORIGINAL = [n for n in library.names() if library.get(n)[0].validated().family == "original"]
TASKS = ("task-sine-original", "task-evidence-original")


@pytest.fixture(scope="module")
def runs():
    """name -> (scenario, kernel network, host raw, host Result, reference Result), computed once."""
    out = {}
    for name in ORIGINAL:
        sc = library.get(name)[0].validated()
        net = kernel_params.kernel_network(sc)
        raw, _ = host.run_kernel(net)
        out[name] = (sc, net, raw, backend.run(sc), reference.run(sc))
    return out


def test_registered_and_buildable():
    assert "spinnaker-host" in backends.names()
    assert backends.BACKENDS["spinnaker-host"].families == ("original",)
    ok, reason = backends.status("spinnaker-host")
    assert ok, reason
    assert len(ORIGINAL) >= 15


def test_struct_layouts_match():
    sizes = host.struct_sizes()
    for name, (c_size, py_size) in sizes.items():
        assert c_size == py_size, name
    assert sizes["neuron_params_t"][0] == 48


def test_exp_constants_are_the_headers():
    header = (host.C_DIR / "eprop_fixed.h").read_text()

    def define(name):
        return int(re.search(rf"#define {name}\s+\(?(?:INT64_C\(|\(fx_t\) )?(-?\d+)", header).group(1))

    assert define("FX_LN2_Q30") == fx.LN2_Q30
    assert define("FX_INV_LN2_Q30") == fx.INV_LN2_Q30
    assert define("FX_EXP_LO") == fx.EXP_LO and define("FX_EXP_HI") == fx.EXP_HI
    table = re.search(r"inv_q30\[FX_EXP_DEGREE \+ 1\] = \{([^}]*)\}", header).group(1)
    assert tuple(int(x) for x in table.split(",")) == fx.EXP_INV_Q30


def test_fixed_point_functions_accuracy():
    """exp within 1 LSB + 1e-9 relative, sqrt the floor of the exact root, divisions rounded."""
    x = np.arange(fx.EXP_LO, fx.EXP_HI, 97, dtype=np.int64)
    got = fx.from_fx(fx.exp(x))
    want = np.exp(fx.from_fx(x))
    assert np.all(np.abs(got - want) <= fx.RESOLUTION + 1e-9 * want)
    a = np.arange(0, 2**31 - 1, 65521, dtype=np.int64)
    r = fx.sqrt(a)
    n = a << 15
    assert np.all(r * r <= n) and np.all((r + 1) * (r + 1) > n)
    assert int(fx.div(3 * fx.ONE, 2 * fx.ONE)) == 3 * fx.ONE // 2
    assert int(fx.div(-fx.ONE, 3 * fx.ONE)) == -round(fx.ONE / 3)
    assert int(fx.div(5, 0)) == fx.FX_MAX and int(fx.mul(fx.FX_MAX, 4 * fx.ONE)) == fx.FX_MAX


@pytest.mark.parametrize("name", ORIGINAL)
def test_host_equals_emulation_bit_for_bit(runs, name):
    sc, net, raw, _, _ = runs[name]
    emulated = emulation.run_kernel(net)
    assert set(emulated) == set(raw)
    for key in raw:
        assert np.array_equal(raw[key], emulated[key]), f"{name}: {key} differs between the host build and the emulation"


@pytest.mark.parametrize("name", ORIGINAL)
def test_against_reference_within_stated_tolerance(runs, name):
    sc, _, _, got, ref = runs[name]
    stated = backend.tolerance(sc)
    cmp = compare_results(sc, ref, got, rtol=stated["rtol"], spike_horizon=stated["horizon"])
    assert cmp.status == "pass", cmp.summary()
    # the measured horizon is the stated one (full run where no horizon is stated)
    assert cmp.horizon == stated["horizon"], (cmp.horizon, stated["horizon"])
    worst = max(q.max_rel_err or 0.0 for q in cmp.quantities if q.name != "spikes")
    assert 0.0 < worst <= stated["rtol"]
    if stated["horizon"] >= sc.n_steps:
        assert np.array_equal(ref.traces["z"], got.traces["z"])
        compared = [q.name for q in cmp.quantities if q.compared]
        assert {"weights/w_in", "weights/w_out", "losses", "synapse/ebar"} <= set(compared)


@pytest.mark.parametrize("name", TASKS)
def test_task_losses_after_the_horizon(runs, name):
    """Beyond the horizon the runs are different networks: the losses are compared as a learning curve."""
    _, _, _, got, ref = runs[name]
    rel = np.abs(got.losses - ref.losses) / np.abs(ref.losses)
    assert got.losses.shape == (5,) and np.all(rel < 0.02), rel


def test_tolerance_statement(runs):
    sc = runs["orig-rec-mse-gd"][0]
    K, a = tol.budget_lsb(sc)
    assert a == pytest.approx(math.exp(-1 / 50.0))  # the adaptation of tau_a = 50 ms is the slowest trace
    assert backend.tolerance(sc)["rtol"] == pytest.approx(K * 2.0**-15 / 0.02)
    assert "LSB" in backend.tolerance(sc)["why"]


def test_parameter_errors_name_the_field():
    from eprop_plugins.parameters import ParameterError

    sc = library.get("orig-lif-single")[0]
    d = sc.to_dict()
    d["optimizer"]["eta"] = 1.5
    with pytest.raises(ParameterError, match="optimizer.eta"):
        backend.run(type(sc).from_dict(d).validated())


def test_validation_reports_the_backend_with_its_tolerance():
    suite = run_validation(["orig-lif-single", "task-sine-original", "event-lif-single"], ["reference", "spinnaker-host"])
    cells = {s.name: s.cells["spinnaker-host"] for s in suite.scenarios}
    assert cells["event-lif-single"].status == "n/a"
    for name in ("orig-lif-single", "task-sine-original"):
        cell = cells[name]
        assert cell.status == "pass", cell.reason
        sc = library.get(name)[0].validated()
        assert cell.comparison.rtol == pytest.approx(backend.tolerance(sc)["rtol"])
    assert cells["task-sine-original"].comparison.horizon == tol.HORIZONS["task-sine-original"]


@pytest.mark.parametrize("op", host.FIXED_OPS)
def test_c_and_numpy_arithmetic_agree_on_random_and_extreme_operands(op):
    """Every operation of eprop_fixed.h equals its NumPy emulation, including saturation and negative rounding."""
    rng = np.random.default_rng(7)
    edge = np.array([0, 1, -1, 2, -2, fx.ONE, -fx.ONE, fx.ONE // 2, -fx.ONE // 2, fx.FX_MAX, fx.FX_MIN,
                     fx.FX_MAX - 1, fx.FX_MIN + 1], dtype=np.int64)
    small = rng.integers(-4 * fx.ONE, 4 * fx.ONE, 20000)
    wide = rng.integers(fx.FX_MIN, fx.FX_MAX, 20000, endpoint=True)
    a = np.concatenate([np.repeat(edge, edge.size), small, wide, small])
    b = np.concatenate([np.tile(edge, edge.size), small[::-1], rng.integers(fx.FX_MIN, fx.FX_MAX, 20000), wide])
    if op in ("decay", "decay_mul"):
        b = b - fx.FX_MIN  # u0.32 bits
        if op == "decay_mul":
            a = a - fx.FX_MIN
    if op == "div_int":
        b = np.where(b == 0, 3, b)
    if op == "exp":
        a = np.concatenate([a, np.arange(fx.EXP_LO - 50, fx.EXP_HI + 50, 7)])
        b = np.zeros_like(a)
    emulated = {"add": fx.add, "sub": fx.sub, "mul": fx.mul, "decay": fx.decay, "div": fx.div,
                "div_int": lambda x, y: fx.sat(fx.rdiv(x, y)), "sqrt": lambda x, y: fx.sqrt(x),
                "exp": lambda x, y: fx.exp(x), "decay_mul": fx.decay_mul}[op](a, b)
    assert np.array_equal(host.fixed_op(op, a, b), np.asarray(emulated, dtype=np.int64))


def test_neurons_per_core_as_documented():
    """The budget of docs/spinnaker.rst: 19/14 at the sine task's fan-in, 26/20 at the evidence task's."""
    assert host.neurons_per_core(200, 199, 1, False) == 19
    assert host.neurons_per_core(200, 199, 1, True) == 14
    assert host.neurons_per_core(140, 139, 2, False) == 26
    assert host.neurons_per_core(140, 139, 2, True) == 20
    assert host.neurons_per_core(100, 100, 1, False) == 36
    assert host.neurons_per_core(500, 499, 1, False) == 7
    # the formula of the docs, from the struct sizes
    n_pre, f, n_out = 200, 199, 1
    assert (65536 - 16384 - 4 * n_pre) // (72 + 48 + 28 + 4 * n_out + 12 * f) == 19


@pytest.mark.parametrize("name", ["orig-rec-ce-adam", "orig-rec-sparse10", "orig-lif-tref5", "orig-rec-firing-reg"])
def test_learning_signal_delay_line_changes_no_bit(runs, name):
    """On a board the error payloads of step t arrive one or two steps later; integrating the recurrent
    synapses late from a delay line of the rows and of psi gives the same bits."""
    _, net, raw, _, _ = runs[name]
    for delay in (1, 2, 4):
        late, _ = host.run_kernel(dataclasses.replace(net, learning_delay=delay))
        for key in raw:
            assert np.array_equal(raw[key], late[key]), f"{name}: {key} differs with learning_delay={delay}"


def test_build_goes_through_the_cache_helpers(tmp_path, monkeypatch):
    """From an empty cache: one compile into <cache>/spinnaker-host/<key>/ with a verified manifest,
    then the cached build (compile_seconds 0.0); a corrupted library is rebuilt, not loaded."""
    from eprop_plugins.cache import MANIFEST, verify_manifest

    monkeypatch.setenv("EPROP_CACHE_DIR", str(tmp_path))
    assert not host.is_built()
    path, seconds = host.build()
    assert seconds > 0.0 and path == tmp_path / "spinnaker-host" / host.build_key() / host.LIBRARY
    assert (path.parent / MANIFEST).is_file() and verify_manifest(path.parent)
    assert host.build() == (path, 0.0)
    path.write_bytes(b"truncated")  # a damaged entry does not count as built
    assert not verify_manifest(path.parent)
    rebuilt, seconds = host.build()
    assert seconds > 0.0 and verify_manifest(rebuilt.parent)
    sc = library.get("orig-lif-single")[0].validated()
    result = backend.run(sc)
    assert result.meta["cached"] is True and result.meta["compile_seconds"] == 0.0
