"""Brian2 backends (runtime Cython/numpy and cpp_standalone), original family, against the NumPy
reference (traces and weights to 1e-10 relative, identical spikes and weight events) and NEST's
published losses (rtol 1e-8).  Real Brian2 throughout; builds are cached across the session.

Every distinct structure costs a compilation on a cold cache (25-75 s here), so the default tests
use few structures (two Cython, three standalone); the other library scenarios are marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from eprop_plugins import reference, reference_numbers as rn, tasks
from eprop_plugins.parameters import ParameterError
from validation import scenario_library as library

from brian2_ext import backend_runtime, backend_standalone
from brian2_ext.runner import run_scenario

RTOL = 1e-10


def _assert_equal_to_reference(res, ref):
    assert np.array_equal(res.traces["z"], ref.traces["z"]), "spike trains differ"
    for name, want in ref.traces.items():
        got = res.traces[name]
        scale = max(float(np.max(np.abs(want))), 1e-300)
        assert np.max(np.abs(got - want)) <= RTOL * scale, name
    for name, want in ref.synapse_traces.items():
        scale = max(float(np.max(np.abs(want))), 1e-300)
        assert np.max(np.abs(res.synapse_traces[name] - want)) <= RTOL * scale, name
    for name, want in ref.weights.items():
        scale = max(float(np.max(np.abs(want))), 1e-300)
        assert np.max(np.abs(res.weights[name] - want)) <= RTOL * scale, name
    for name in ("step", "proj", "pre", "post"):
        assert np.array_equal(res.weight_events[name], ref.weight_events[name]), name
    assert np.allclose(res.weight_events["w"], ref.weight_events["w"], rtol=RTOL, atol=0)
    assert np.allclose(res.losses, ref.losses, rtol=RTOL, atol=0)


def test_backends_check():
    backend_runtime.check()
    backend_standalone.check()


@pytest.mark.parametrize("name", ["orig-rec-ce-adam", "orig-rec-batch2-adam",
                                  pytest.param("orig-alif-single", marks=pytest.mark.slow),
                                  pytest.param("orig-rec-symmetric", marks=pytest.mark.slow),
                                  pytest.param("orig-rec-surrogates", marks=pytest.mark.slow),
                                  pytest.param("orig-rec-tf-arrival", marks=pytest.mark.slow),
                                  pytest.param("orig-rec-firing-reg", marks=pytest.mark.slow)])
def test_cython_equals_reference(name):
    sc = library.build(name)
    _assert_equal_to_reference(backend_runtime.run(sc), reference.run(sc))


def test_numpy_target_equals_reference():
    sc = library.build("orig-lif-tref5")
    _assert_equal_to_reference(run_scenario(sc, mode="numpy"), reference.run(sc))


def test_standalone_equals_reference_small():
    sc = library.build("orig-rec-batch2-adam")
    res, ref = backend_standalone.run(sc), reference.run(sc)
    _assert_equal_to_reference(res, ref)
    # the grid loops (vectorised trace passes) change no bit: traces, synapse traces, weights exact
    for name, want in ref.traces.items():
        assert np.array_equal(res.traces[name], want), name
    for name, want in ref.synapse_traces.items():
        assert np.array_equal(res.synapse_traces[name], want), name
    for name, want in ref.weights.items():
        assert np.array_equal(res.weights[name], want), name
    assert np.array_equal(res.weight_events["w"], ref.weight_events["w"])
    from brian2_ext.sessions import StandaloneSession

    # the sources the installed binary was compiled from (Brian2 may have suffixed the names with
    # "_1" in the process that built it, if that process had created a network before)
    code = StandaloneSession.active().directory / "code_objects"
    for proj in ("in", "rec"):
        (source,) = [p for p in code.glob(f"eprop_syn_{proj}_trace_codeobject*.cpp")
                     if p.stem.removeprefix(f"eprop_syn_{proj}_trace_codeobject").lstrip("_").isdigit()
                     or p.stem == f"eprop_syn_{proj}_trace_codeobject"]
        assert "e-prop grid loop" in source.read_text(), proj


def test_grid_loop_hoists_only_unwritten_presynaptic_loads():
    from brian2_ext.grid_loops import split_vector_code

    body = ("const int32_t _postsynaptic_idx = _ptr_array_s__synaptic_post[_idx];\n"
            "const int32_t _presynaptic_idx = _ptr_array_s__synaptic_pre[_idx];\n"
            "const double x_pre = _ptr_array_g_x[_presynaptic_idx];\n"
            "double w = _ptr_array_s_w[_idx];\nw += x_pre;\n_ptr_array_s_w[_idx] = w;\n")
    hoisted, rest = split_vector_code(body)
    assert hoisted == "const double x_pre = _ptr_array_g_x[_presynaptic_idx];"
    assert "_synaptic_" not in rest and "_ptr_array_g_x" not in rest and "w += x_pre;" in rest
    # a presynaptic variable the code writes is read per synapse, in order
    hoisted, rest = split_vector_code(body + "_ptr_array_g_x[_presynaptic_idx] = w;\n")
    assert hoisted == "" and "_ptr_array_g_x[_presynaptic_idx];" in rest


def test_standalone_sine_matches_nest_and_reference():
    sc = tasks.sine("original", 5)
    sc.record_synapses = [("in", 3, 5), ("rec", 2, 7), ("out", 4, 0)]
    seen = []
    res = backend_standalone.run(sc, on_iteration=lambda i, loss: seen.append((i, loss)))
    np.testing.assert_allclose(res.losses, rn.SINE_ORIGINAL_NEST, rtol=1e-8, atol=0)
    assert seen == list(enumerate(res.losses))  # called after the single run, in order
    _assert_equal_to_reference(res, reference.run(sc))
    # losses only: no per-step monitors, losses accumulated in Brian2 variables
    lean = backend_standalone.run(sc, record=False)
    assert lean.traces == {} and lean.weights == {}
    np.testing.assert_allclose(lean.losses, res.losses, rtol=1e-13, atol=0)
    assert lean.meta["seconds_per_iteration"] == lean.meta["run_seconds"] / 5
    # the recording structure again, in a new session: the cached binary is reused without compiling
    again = backend_standalone.run(sc, record_weight_events=False)
    assert again.meta["compiled"] is False
    np.testing.assert_array_equal(again.losses, res.losses)


def test_standalone_evidence_matches_nest():
    sc = tasks.evidence("original", 5)
    res = backend_standalone.run(sc, record_weight_events=False)
    np.testing.assert_allclose(res.losses, rn.EVIDENCE_ORIGINAL_NEST[1], rtol=1e-8, atol=0)
    ref = reference.run(sc, record_weight_events=False)
    assert np.array_equal(res.traces["z"], ref.traces["z"])
    for name in ("v", "psi", "adaptation", "learning_signal", "y"):
        scale = float(np.max(np.abs(ref.traces[name])))
        assert np.max(np.abs(res.traces[name] - ref.traces[name])) <= RTOL * scale, name


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sine", "evidence"])
def test_cython_tasks_match_nest(task):
    sc = tasks.make_task(task, family="original", iterations=5)
    want = rn.nest_reference_losses(task, "original", 1, 1)
    seen = []
    res = backend_runtime.run(sc, record=False, on_iteration=lambda i, loss: seen.append(loss))
    np.testing.assert_allclose(res.losses, want, rtol=1e-8, atol=0)
    assert seen == list(res.losses)


@pytest.mark.slow
def test_standalone_memory_does_not_grow_with_recording_off():
    """Losses-only runs keep no per-step state: 4x longer sequences cost only the input raster."""
    import resource
    import subprocess
    import sys

    code = ("import resource, sys; from eprop_plugins import tasks; from brian2_ext import backend_standalone; "
            "backend_standalone.run(tasks.sine('original', 3, sequence_steps=int(sys.argv[1])), record=False); "
            "print(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))")
    rss = {n: int(subprocess.run([sys.executable, "-c", code, str(n)], check=True, capture_output=True,
                                 text=True).stdout.split()[-1]) for n in (1000, 4000)}
    # the raster of 3 x 3000 extra steps x 100 inputs is 7.2 MB (float64) in Python and in the binary
    assert rss[4000] - rss[1000] < 40_000, rss  # kB


def test_bad_mode_and_bad_parameters():
    sc = library.build("orig-lif-single")
    with pytest.raises(ParameterError, match="mode"):
        run_scenario(sc, mode="gpu")
    sc.optimizer = dict(sc.optimizer, eta=-1.0)
    with pytest.raises(ParameterError, match="optimizer.eta"):
        backend_runtime.run(sc)


_RUN_ONE = """
import json, sys
import numpy as np
from validation import scenario_library as library
from brian2_ext import backend_standalone
res = backend_standalone.run(library.build(sys.argv[1]))
np.savez(sys.argv[2], losses=res.losses, **{"trace_" + k: v for k, v in res.traces.items()},
         **{"w_" + k: v for k, v in res.weights.items()}, **{"wev_" + k: v for k, v in res.weight_events.items()})
print(json.dumps({k: res.meta[k] for k in ("cached", "compile_seconds", "structure")}))
"""


def test_standalone_build_is_safe_under_concurrency_and_interruption(tmp_path):
    """A build killed half-way is detected and rebuilt; two processes that first use a structure at once
    build it once (the other waits), and both give the reference's numbers.  Empty EPROP_CACHE_DIR."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from eprop_plugins.cache import verify_manifest

    name = "orig-lif-single"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "EPROP_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(root)}
    script = tmp_path / "run_one.py"
    script.write_text(_RUN_ONE)

    def start(tag):
        return subprocess.Popen([sys.executable, str(script), name, str(tmp_path / f"{tag}.npz")], env=env, cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    # 1. killed while compiling (the process group: make and the compilers too)
    killed = start("killed")
    t0 = time.monotonic()
    line = ""
    while "compiling Brian2 standalone code" not in line:
        line = killed.stderr.readline()
        assert line or killed.poll() is None, "the build ended before it announced the compilation"
        assert time.monotonic() - t0 < 300
    time.sleep(5)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    builds = tmp_path / "cache" / "brian2" / "standalone-builds"
    key = line.split(", build ")[1].split(",")[0]  # builds are named by the key of their sources
    assert not verify_manifest(builds / key) and not (builds / key).exists()
    assert list(builds.glob(f".{key}.build-*")), "the killed build left its private directory"

    # 2. two processes at once: one rebuilds, the other waits for it
    procs = [start("a"), start("b")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    metas = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sorted(m["cached"] for m in metas) == [False, True], metas
    assert sum("eprop: compiling Brian2 standalone code" in err for _, err in outs) == 1
    # the other one waited for the lock (it announces that) unless it came after the build was installed
    assert any("waiting for it" in err for _, err in outs) or min(m["compile_seconds"] for m in metas) == 0.0
    assert verify_manifest(builds / key) and not list(builds.glob(f".{key}.build-*"))

    ref = reference.run(library.build(name))
    for tag in ("a", "b"):
        got = np.load(tmp_path / f"{tag}.npz")
        assert np.array_equal(got["trace_z"], ref.traces["z"]), tag
        for k, want in ref.traces.items():
            scale = max(float(np.max(np.abs(want))), 1e-300)
            assert np.max(np.abs(got["trace_" + k] - want)) <= RTOL * scale, (tag, k)
        for k, want in ref.weights.items():
            assert np.max(np.abs(got["w_" + k] - want)) <= RTOL * max(float(np.max(np.abs(want))), 1e-300), (tag, k)
        for k in ("step", "proj", "pre", "post"):
            assert np.array_equal(got["wev_" + k], ref.weight_events[k]), (tag, k)
        np.testing.assert_allclose(got["losses"], ref.losses, rtol=RTOL, atol=0)


def test_compiler_failure_is_a_backend_error(tmp_path):
    """A failing C++ compiler gives BackendError naming backend, scenario and what to do; nothing is installed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("from validation import scenario_library as library\nfrom brian2_ext import backend_standalone\n"
            "from eprop_plugins.errors import BackendError\ntry:\n    backend_standalone.run(library.build('orig-lif-single'))\n"
            "except BackendError as e:\n    print('BACKEND', e.backend, e.scenario, type(e.original).__name__, '|', e)\n")
    env = {**os.environ, "EPROP_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(root), "CXX": "false"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
                         timeout=600).stdout
    assert "BACKEND brian2-standalone orig-lif-single RuntimeError |" in out, out
    assert "the C++ compilation of the Brian2 standalone code failed" in out and "g++ and make" in out, out
    assert "Project compilation failed" in out, out  # Brian2's own message is attached
    builds = tmp_path / "brian2" / "standalone-builds"
    assert [p.name for p in builds.iterdir() if not p.name.endswith(".lock")] == []  # no build, no leftovers


_RUN_CYTHON = """
import json, sys
import numpy as np
from validation import scenario_library as library
from brian2_ext import backend_runtime
res = backend_runtime.run(library.build(sys.argv[1]))
np.savez(sys.argv[2], losses=res.losses, **{"trace_" + k: v for k, v in res.traces.items()})
mods = [m.__file__ for n, m in sorted(sys.modules.items()) if n.startswith("_cython_magic_")]
print(json.dumps({"modules": mods, "cached": res.meta["cached"]}))
"""


def test_truncated_cython_module_is_compiled_again(tmp_path):
    """Brian2 loads any existing .so of its Cython cache; a truncated one (an interrupted link) is detected,
    compiled again, and the run equals the reference.  Uses a copy of the shared Cython cache."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from brian2_ext.config import cache_dir

    name = "orig-lif-single"
    root = Path(__file__).resolve().parents[1]
    shutil.copytree(cache_dir("cython"), tmp_path / "cache" / "brian2" / "cython",
                    ignore=shutil.ignore_patterns("*.lock", "*.pyx", "*.cpp", "*.o"))
    env = {**os.environ, "EPROP_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(root)}
    script = tmp_path / "run_cython.py"
    script.write_text(_RUN_CYTHON)

    def run(tag):
        p = subprocess.run([sys.executable, str(script), name, str(tmp_path / f"{tag}.npz")], env=env, cwd=root,
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr

    first, _ = run("first")
    victim = Path(max(first["modules"], key=lambda f: Path(f).stat().st_size))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])  # what a link killed half-way leaves
    again, err = run("again")
    assert f"the Brian2 Cython module {victim.name} is truncated" in err, err
    # compiled again (its size need not be the old one's: the shared cache may hold modules built with other flags)
    from brian2_ext.sessions import _elf_complete

    assert victim.read_bytes() != data[: len(data) // 3] and _elf_complete(victim) and again["cached"] is False
    ref = reference.run(library.build(name))
    got = np.load(tmp_path / "again.npz")
    assert np.array_equal(got["trace_z"], ref.traces["z"])
    for k, want in ref.traces.items():
        assert np.max(np.abs(got["trace_" + k] - want)) <= RTOL * max(float(np.max(np.abs(want))), 1e-300), k
    np.testing.assert_allclose(got["losses"], ref.losses, rtol=RTOL, atol=0)
