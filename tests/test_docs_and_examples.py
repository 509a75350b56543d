"""The documentation builds and its examples run."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_example_runs_and_matches_nest(capsys):
    runpy.run_path(str(ROOT / "examples" / "train_sine_reference.py"), run_name="__main__")
    out = capsys.readouterr().out
    diffs = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "relative difference" in line]
    assert len(diffs) == 5 and max(diffs) < 1e-8


def test_sphinx_builds_with_generated_parameter_tables(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(ROOT / "docs"), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "parameters.html").read_text()
    assert "surrogate_gradient_function" in html and "isi_trace_cutoff" in html
    assert np.all([(tmp_path / f"{p}.html").exists() for p in ("model", "scenarios", "reference", "cli")])
