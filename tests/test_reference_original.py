"""The NumPy reference (original family) against the public NEST and TensorFlow numbers (docs/model.rst §5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eprop_plugins import reference, tasks
from eprop_plugins.cli import main
from eprop_plugins.reference_numbers import EVIDENCE_ORIGINAL_NEST, SINE_ORIGINAL_NEST, SINE_ORIGINAL_TF


def test_train_sine_original_cli_matches_nest_and_tensorflow(tmp_path, capsys):
    assert main(["train", "sine", "--family", "original", "--backend", "reference", "--iterations", "5",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("iteration ") == 5  # one progress line per iteration
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["task"] == "sine" and result["family"] == "original" and result["backend"] == "reference"
    np.testing.assert_allclose(result["losses"], SINE_ORIGINAL_NEST, rtol=1e-8, atol=0)
    np.testing.assert_allclose(result["losses"], SINE_ORIGINAL_TF, rtol=1e-7, atol=0)
    assert (tmp_path / "losses.png").stat().st_size > 1000


@pytest.mark.parametrize("batch_size", [1, 2])
def test_evidence_original_matches_nest(tmp_path, batch_size):
    assert main(["train", "evidence", "--family", "original", "--backend", "reference", "--iterations", "5",
                 "--batch-size", str(batch_size), "--out", str(tmp_path)]) == 0
    losses = json.loads((tmp_path / "result.json").read_text())["losses"]
    np.testing.assert_allclose(losses, EVIDENCE_ORIGINAL_NEST[batch_size], rtol=1e-8, atol=0)


def test_reference_is_fast_enough_and_records_everything():
    sc = tasks.sine("original", 1)
    sc.record_synapses = [("in", 3, 7), ("rec", 5, 9), ("out", 4, 0)]
    res = reference.run(sc, record_weight_events=True)
    # well under a second for a 100-in/100-rec 1000-step iteration (generous bound against a loaded CI)
    assert res.meta["seconds"] < 2.0
    n = sc.n_steps
    for name in ("v", "z", "psi", "adaptation", "v_th_adapt", "learning_signal", "fr_reg"):
        assert res.traces[name].shape == (n, 100), name
    for name in ("readout_v", "y", "target", "error"):
        assert res.traces[name].shape == (n, 1), name
    for name in ("zbar", "e", "ebar"):
        assert res.synapse_traces[name].shape == (n, 3)
    assert res.traces["z"].sum() > 100  # the network spikes
    # the readout is the low-pass filtered recurrent spikes: check one step by hand
    t = int(np.nonzero(res.traces["z"][:, 4])[0][5])
    # the learning signal is B e (one readout)
    np.testing.assert_allclose(res.traces["learning_signal"][t], sc.w_fb[:, 0] * res.traces["error"][t, 0], rtol=1e-15)
    # every weight event carries the initial weight in the first (only) interval
    ev = res.weight_events
    assert ev["step"].size > 1000
    first = ev["proj"] == 0
    np.testing.assert_array_equal(ev["w"][first], sc.w_in[ev["post"][first], ev["pre"][first]])
    # the weights changed after the update, by -eta * gradient (gradient descent)
    assert not np.array_equal(res.weights["w_in"][0], sc.w_in)


def test_symmetric_feedback_tracks_readout_weights():
    sc = tasks.sine("original", 3)
    sc.network = {**sc.network, "feedback": "symmetric"}
    res = reference.run(sc, record_weight_events=False)
    for s in range(3):
        np.testing.assert_array_equal(res.weights["w_fb"][s], res.weights["w_out"][s].T)
    sc.network = {**sc.network, "feedback": "symmetric_initial"}
    res2 = reference.run(sc, record_weight_events=False)
    np.testing.assert_array_equal(res2.weights["w_fb"][2], sc.w_out.T)
    assert not np.allclose(res.losses[1:], res2.losses[1:], rtol=1e-12)


def test_train_sine_event_cli_reports_nest_test_losses(tmp_path):
    from eprop_plugins.tasks_event import NEST_TEST_LOSSES

    assert main(["train", "sine", "--family", "event", "--iterations", "5", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["family"] == "event" and len(result["losses"]) == 5
    np.testing.assert_allclose(result["nest_test_definition_losses"], NEST_TEST_LOSSES["iaf"], rtol=1e-8, atol=0)
    np.testing.assert_allclose(result["nest_reference_losses"], NEST_TEST_LOSSES["iaf"], rtol=0, atol=0)
