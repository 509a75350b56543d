"""The 5 000-neuron, 10 %-connected network: saved, loaded and run on ``nestml`` and the reference
without a dense matrix, with the same numbers (slow).

Each family runs in a fresh process that measures its own peak resident memory and, with
``tracemalloc``, the peak of Python-side allocations (NumPy's included) during every phase: none
may grow by as much as one dense ``n_rec x n_rec`` float64 matrix.  The numbers are printed
(``pytest -s``) and quoted in docs/scenarios.rst.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from eprop_plugins import reference
from eprop_plugins.random_scenarios import sparse_network
from nest_models import backend as nestml
from validation.compare import compare_results

N_REC = 5000
DENSITY = 0.1
MAX_FILE_BYTES = 50_000_000

CHILD = textwrap.dedent("""
    import json, os, resource, sys, time, tracemalloc
    from eprop_plugins.random_scenarios import sparse_network
    from eprop_plugins import scenario
    family, path, n_rec, density = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    from nest_models import backend as nestml
    nestml.check()
    out, seconds = {}, {}
    tracemalloc.start()

    def phase(name, fn):
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        value = fn()
        seconds[name] = time.perf_counter() - t0
        out[name] = tracemalloc.get_traced_memory()[1] - start
        return value

    sc = phase("build", lambda: sparse_network(family, n_rec, density))
    phase("validate", sc.validated)
    phase("save", lambda: sc.save(path))
    del sc
    loaded = phase("load", lambda: scenario.load(path))
    res = phase("run", lambda: nestml.run(loaded, record_weight_events=False))
    print(json.dumps({"peak_growth_bytes": out, "seconds": seconds, "file_bytes": os.path.getsize(path),
                      "n_connections": loaded.w_rec.n_connections + loaded.w_in.n_connections
                      + loaded.w_out.n_connections,
                      "spikes": int(res.traces["z"].sum()), "losses": res.losses.tolist(),
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["original", "event"])
def test_5000_neurons_10_percent_save_load_and_run_on_nestml_without_dense_arrays(tmp_path, family):
    path = tmp_path / f"sparse-{family}.npz"
    proc = subprocess.run([sys.executable, "-c", CHILD, family, str(path), str(N_REC), str(DENSITY)],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(family, json.dumps(report, indent=1))
    assert report["file_bytes"] < MAX_FILE_BYTES
    assert abs(report["n_connections"] / (N_REC * (N_REC - 1 + 100 + 2)) - DENSITY) < 0.005
    dense_matrix = N_REC * N_REC * 8
    for phase, growth in report["peak_growth_bytes"].items():
        assert growth < dense_matrix, f"{phase}: Python allocations grew by {growth / 1e6:.0f} MB"
    assert report["spikes"] > N_REC, "the network should spike"
    assert np.all(np.isfinite(report["losses"]))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["original", "event"])
def test_5000_neurons_10_percent_nestml_equals_the_reference(family):
    """The reference runs the same network on its per-synapse vectors: nestml equals it, spikes identical."""
    sc = sparse_network(family, N_REC, DENSITY).validated()
    ref = reference.run(sc, record_weight_events=False)
    assert ref.traces["z"].sum() > N_REC
    cmp = compare_results(sc, ref, nestml.run(sc, record_weight_events=False))
    assert cmp.status == "pass", cmp.summary()
    print(family, cmp.summary())
