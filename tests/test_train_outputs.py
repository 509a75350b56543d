"""What ``eprop train`` leaves for a user: result.json with the run's losses, and three readable figures.

The command runs as a subprocess (as a user runs it) with the reference backend for three iterations;
the losses in result.json must equal an in-process reference run bit for bit, and losses.png,
readout.png (readout against target, first and last iteration) and spikes.png (recurrent raster)
must be complete PNG files of the size the figures are drawn at.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import reference, tasks
from eprop_plugins.reference_numbers import SINE_ORIGINAL_NEST
from eprop_plugins.train_plots import iteration_slices, use_log_axis, write_training_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header; checks the signature and the end chunk (a complete file)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND", f"{path} is truncated"
    return struct.unpack(">II", data[16:24])


def test_eprop_train_writes_results_and_figures(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "eprop_plugins.cli", "train", "sine", "--backend", "reference",
                           "--iterations", "3", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "run"
    result = json.loads((out / "result.json").read_text())
    want = reference.run(tasks.sine("original", 3), record_weight_events=False).losses
    assert result["losses"] == [float(x) for x in want]  # bit for bit
    np.testing.assert_allclose(result["losses"], SINE_ORIGINAL_NEST[:3], rtol=1e-8, atol=0)
    assert result["plots"] == ["losses.png", "readout.png", "spikes.png"]
    assert _png_size(out / "losses.png") == (768, 432)  # 6.4 x 3.6 in at 120 dpi
    assert _png_size(out / "readout.png") == (1248, 408)  # two panels: first and last iteration
    assert _png_size(out / "spikes.png") == (1248, 408)
    assert not list(out.glob(".*.tmp")), "a temporary file of an atomic write was left behind"


def test_log_axis_only_when_the_loss_spans_decades():
    assert not use_log_axis([101.96, 103.47, 103.34])
    assert use_log_axis([100.0, 10.0, 2.0])  # 1.7 decades
    assert not use_log_axis([1.0, 0.5, 0.0])  # a zero loss cannot be drawn on a log axis
    assert not use_log_axis([1.0, float("nan")])


def test_long_run_figure_and_runs_without_traces(tmp_path):
    """A long loss curve is drawn as a line (no markers); without traces only losses.png is written."""
    sc = tasks.sine("event", 2).validated()
    losses = list(np.geomspace(1.0, 1e-3, 2000))
    assert write_training_plots(tmp_path, sc, losses, {}, "long run") == ["losses.png"]
    assert _png_size(tmp_path / "losses.png") == (768, 432)
    assert not (tmp_path / "readout.png").exists()


@pytest.mark.parametrize("iterations, expected", [(1, [(0, slice(0, 100))]),
                                                  (4, [(0, slice(0, 100)), (3, slice(300, 400))])])
def test_first_and_last_iteration(iterations, expected):
    assert iteration_slices(tasks.sine("event", iterations).validated()) == expected
