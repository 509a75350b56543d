"""Fault tests of the NESTML module build: concurrent first builds, a build killed half-way, a damaged
cached module, and a module reinstalled under a process that has it loaded.

Real NESTML, NEST and compiler; every test starts from its own empty temporary ``EPROP_CACHE_DIR``
(tests (b), (c) and (d) copy a module built by (a) into theirs).  Each "run" is a separate Python process
that trains the original-family sine task for 2 iterations on the ``nestml`` backend (which builds
or loads the module on its own) and saves its result; the result must match the NumPy reference
trace for trace (relative error <= 1e-10, identical spikes).  The file builds the module twice
(about 1-3 minutes of CPU each here) plus a build killed half-way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import reference, tasks
from eprop_plugins.cache import MANIFEST, install_directory, verify_manifest
from eprop_plugins.results import Result
from nest_models import build
from validation.compare import compare_results

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-10
#: generous: a build takes 1-3 minutes alone, several times that on a loaded 2-core machine
TIMEOUT = 1800
BUILDING = "eprop: building the NESTML e-prop module"

#: one run of the nestml backend in a fresh process: sine task, 2 iterations; writes result.npz
#: and, with "hold", waits for a line on stdin before a second run in the same process
RUN = """\
import json, sys
from pathlib import Path
from eprop_plugins import tasks
from nest_models import backend as nestml
out = Path(sys.argv[1])
res = nestml.run(tasks.sine("original", 2))
res.save_npz(out / "result.npz")
if len(sys.argv) > 2:  # hold: report, wait, then train again in this process after nest.ResetKernel()
    print("ready", flush=True)
    sys.stdin.readline()
    import nest
    nest.Simulate(100.0)  # the network of the first run, on the module mapped before the reinstall
    again = nestml.run(tasks.sine("original", 2))
    again.save_npz(out / "again.npz")
print(json.dumps({"module": res.meta.get("module")}), flush=True)
"""


def _env(cache: Path) -> dict[str, str]:
    # the subprocesses import this repository's code, whatever is installed
    return {**os.environ, "EPROP_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}


def _start_run(cache: Path, out: Path, *, hold: bool = False) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", RUN, str(out)] + (["hold"] if hold else [])
    return subprocess.Popen(argv, env=_env(cache), cwd=REPO, stdin=subprocess.PIPE if hold else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-4000:]}"
    return out, err


def _load_result(path: Path) -> Result:
    """Read a Result written by ``Result.save_npz`` (arrays only; meta from the JSON beside it)."""
    groups: dict[str, dict[str, np.ndarray]] = {"trace": {}, "syn": {}, "wev": {}, "w": {}}
    with np.load(path) as data:
        losses = data["losses"]
        for name in data.files:
            if "/" in name:
                prefix, key = name.split("/", 1)
                groups[prefix][key] = data[name]
    info = json.loads(path.with_suffix(".json").read_text())
    return Result(info["scenario"], info["family"], info["backend"], losses, groups["trace"], groups["syn"],
                  groups["wev"], groups["w"], info["meta"])


@pytest.fixture(scope="module")
def expected() -> tuple:
    sc = tasks.sine("original", 2)
    return sc, reference.run(sc)


def _assert_correct(path: Path, expected) -> Result:
    sc, ref = expected
    got = _load_result(path)
    cmp = compare_results(sc.validated(), ref, got, rtol=RTOL)
    assert cmp.status == "pass", cmp.summary()
    assert {"spikes", "traces/v", "traces/learning_signal", "losses"} <= {q.name for q in cmp.quantities}
    np.testing.assert_allclose(got.losses, ref.losses, rtol=RTOL, atol=0)
    return got


def _leftovers(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "nestml").glob(".*") if p.is_dir())


def _processes_in(directory: Path) -> list[int]:
    """Processes whose command line or working directory lies in ``directory`` (the build's compilers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(directory) in cmdline or cwd.startswith(str(directory)):
            found.append(int(proc.name))
    return found


def _verified_entry(cache: Path) -> Path:
    entry = build.module_directory(cache)
    assert build.is_built(cache)
    assert verify_manifest(entry, hashes=True)
    assert build.MODULE_FILE in json.loads((entry / MANIFEST).read_text())["files"]
    return entry


# ---------------------------------------------------------------------------------------- (a) concurrency
@pytest.fixture(scope="module")
def concurrent_first_use(tmp_path_factory):
    """Two processes start the first nestml run at once from an empty cache (one build)."""
    cache = tmp_path_factory.mktemp("cache-concurrent")
    work = tmp_path_factory.mktemp("runs-concurrent")
    t0 = time.perf_counter()
    procs = [_start_run(cache, work / name) for name in ("first", "second")]
    outputs = [_finish(p) for p in procs]
    return cache, work, outputs, time.perf_counter() - t0


def test_concurrent_first_use_builds_once_and_both_runs_are_correct(concurrent_first_use, expected):
    cache, work, outputs, seconds = concurrent_first_use
    entry = _verified_entry(cache)
    errs = [err for _, err in outputs]
    # one process built, the other said it waits for it and did not build
    assert sum(err.count(BUILDING) for err in errs) == 1, errs
    builder = 0 if BUILDING in errs[0] else 1
    waiting = f"eprop: another process is building the NESTML module into {entry}; waiting ..."
    assert waiting in errs[1 - builder] and waiting not in errs[builder], errs
    assert json.loads((entry / "build.json").read_text())["key"] == build.source_hash()
    for out, _ in outputs:  # both loaded the installed module
        assert json.loads(out.splitlines()[-1])["module"] == str(entry / build.MODULE_FILE)
    for name in ("first", "second"):
        _assert_correct(work / name / "result.npz", expected)
    assert not _leftovers(cache), "the private build directory was not removed"
    print(f"two concurrent first runs: {seconds:.0f} s")


# ---------------------------------------------------------------------------------------- (b) killed build
def test_build_killed_half_way_is_detected_and_rebuilt(concurrent_first_use, tmp_path, expected):
    cache = tmp_path / "cache"
    entry = build.module_directory(cache)
    proc = subprocess.Popen([sys.executable, "-m", "nest_models.build"], env=_env(cache), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # wait until the compiler has written its first object file: half-way through compilation
    t0 = time.perf_counter()
    objects: list[Path] = []
    while not objects:
        assert proc.poll() is None, f"the build ended before it could be killed: {proc.stderr.read()}"
        assert time.perf_counter() - t0 < TIMEOUT, "no object file appeared"
        time.sleep(0.5)
        objects = list((cache / "nestml").glob(".*.build-*/target/**/*.o"))
    private = objects[0].relative_to(cache / "nestml").parts[0]
    private = cache / "nestml" / private
    assert _processes_in(private), "no compiler was running at the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    print(f"killed the build after {time.perf_counter() - t0:.0f} s")
    # the compilers die with the build (its watchdog kills their process group)
    deadline = time.perf_counter() + 10
    while _processes_in(private) and time.perf_counter() < deadline:
        time.sleep(0.2)
    survivors = _processes_in(private)
    for pid in survivors:  # cleanup of what this test started, before failing
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"compiler processes survived the killed build: {survivors}"

    # the cache has no verified module: nothing was installed, only the private directory is left
    assert not build.is_built(cache) and not entry.exists()
    assert _leftovers(cache) == [private]

    # and a damaged module where the entry belongs (a full disk or an interrupted copy): the same next run
    # must detect both, say so, and build once (one rebuild serves (b) and (c): a build is 1-3 min)
    shutil.copytree(build.module_directory(concurrent_first_use[0]), entry)
    so = entry / build.MODULE_FILE
    size = so.stat().st_size
    with open(so, "r+b") as f:
        f.truncate(size // 2)
    assert not build.is_built(cache)

    t1 = time.perf_counter()
    out, err = _finish(_start_run(cache, tmp_path / "run"))
    print(f"next run (rebuild + 2 iterations): {time.perf_counter() - t1:.0f} s")
    assert f"the cached NESTML module in {entry} does not match its manifest" in err
    assert err.count(BUILDING) == 1, err
    _assert_correct(tmp_path / "run" / "result.npz", expected)
    _verified_entry(cache)
    assert (entry / build.MODULE_FILE).stat().st_size > size // 2  # (builds are not byte-identical: paths)
    assert not _leftovers(cache), "the next build did not remove the killed build's directory"


# ---------------------------------------------------------------------------------------- (c) damaged module
def _copy_entry(source_cache: Path, cache: Path) -> Path:
    """A cache containing only a copy of the verified module of ``source_cache``."""
    entry = build.module_directory(cache)
    entry.parent.mkdir(parents=True)
    shutil.copytree(build.module_directory(source_cache), entry)
    return entry


def test_truncated_cached_module_is_detected_and_not_loaded(concurrent_first_use, tmp_path):
    """A damaged cached module is not built (cheap check) and never handed to NEST; that the next run rebuilds
    it is tested in (b)."""
    cache = tmp_path / "cache"
    entry = _copy_entry(concurrent_first_use[0], cache)
    so = entry / build.MODULE_FILE
    assert build.is_built(cache) and verify_manifest(entry, hashes=True)
    size = so.stat().st_size
    with open(so, "r+b") as f:  # one byte short: the sizes recorded at build time catch it
        f.truncate(size - 1)
    assert not build.is_built(cache)
    with pytest.raises(build.BuildError, match="not built for the current sources"):
        build.load_module(build=False, cache=cache)
    with open(so, "r+b") as f:  # the right size, one byte changed: the SHA-256 of the manifest catches it
        f.truncate(size)
        f.seek(size // 2)
        byte = f.read(1)[0]
        f.seek(size // 2)
        f.write(bytes([byte ^ 0xFF]))
    assert not verify_manifest(entry, hashes=True)
    with pytest.raises(build.BuildError, match="not built for the current sources"):
        build.load_module(build=False, cache=cache)


# ---------------------------------------------------------------------------------------- (d) reinstall
def test_reinstalling_does_not_touch_a_loaded_module(concurrent_first_use, tmp_path, expected):
    """What a ``--force`` rebuild ends with (install a new directory) under a process that has the module loaded."""
    cache = tmp_path / "cache"
    entry = _copy_entry(concurrent_first_use[0], cache)
    old_inode = (entry / build.MODULE_FILE).stat().st_ino
    proc = _start_run(cache, tmp_path / "run", hold=True)
    timer = threading.Timer(TIMEOUT, proc.kill)  # never wait forever for the line below
    timer.start()
    try:
        lines = iter(proc.stdout.readline, "")
        ready = any(line.strip() == "ready" for line in lines)  # NEST's banner comes first
    finally:
        timer.cancel()
    if not ready:
        proc.kill()
        pytest.fail(f"the first run did not finish: {proc.communicate()[1][-4000:]}")
    replacement = tmp_path / "new"
    shutil.copytree(entry, replacement)
    install_directory(replacement, entry)
    assert (entry / build.MODULE_FILE).stat().st_ino != old_inode
    proc.stdin.write("go\n")
    proc.stdin.flush()
    _, err = _finish(proc)
    assert BUILDING not in err
    _assert_correct(tmp_path / "run" / "result.npz", expected)
    _assert_correct(tmp_path / "run" / "again.npz", expected)
    _verified_entry(cache)
