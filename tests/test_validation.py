"""The cross-simulator validation suite: scenario library, comparison, runner, report, CLI.

The suite is tested with the real reference, and with a deliberately perturbed reference injected
through the runner's ``extra_backends`` hook, which must fail with the scenario, the quantity and the
first diverging step named.
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from eprop_plugins import backends as registry
from eprop_plugins import connectivity as cn
from eprop_plugins.parameters import ParameterError
from eprop_plugins.reference import run as reference_run
from validation import cli, scenario_library as library
from validation.compare import compare_results
from validation.builds import BuildPlan
from validation.compare_reports import compare_reports, load_report, main as compare_reports_main
from validation.perturb import PerturbedBackend, perturb_scenario
from validation.runner import describe_backends, not_applicable, run_validation
from validation.schema import REPORT_SCHEMA, SchemaError, validate

SMALL = ["orig-lif-single", "orig-rec-ce-adam"]


@pytest.fixture(scope="module")
def small_reference():
    sc = library.get("orig-rec-mse-gd")[0].validated()
    return sc, reference_run(sc)


# ------------------------------------------------------------------------------------------ library
def test_library_has_the_required_coverage():
    scenarios = {n: library.build(n).validated() for n in library.names() if n != "task-sine-event"}
    assert len(library.names()) >= 16
    for name, sc in scenarios.items():
        assert sc.description.strip(), name
        assert set(sc.tolerance) == {"rtol", "why"} and 0 < sc.tolerance["rtol"] <= 1e-10 and sc.tolerance["why"], name
        assert sc.record_synapses, name

    def has(pred):
        return [n for n, sc in scenarios.items() if pred(sc)]

    models = {p.model for sc in scenarios.values() for p in sc.populations}
    assert models == {"iaf", "iaf_adapt", "iaf_psc_delta", "iaf_psc_delta_adapt"}
    assert {sc.family for sc in scenarios.values()} == {"original", "event"}
    t_refs = {p.params["tau_refrac"] for sc in scenarios.values() for p in sc.populations}
    assert {0.0, 2.0, 5.0} <= t_refs
    assert has(lambda sc: sc.n_rec == 1 and sc.family == "original") and has(lambda sc: sc.n_rec == 1 and sc.family == "event")
    assert has(lambda sc: sc.readout["loss"] == "cross_entropy")
    for family in ("original", "event"):
        fam = lambda sc, f=family: sc.family == f  # noqa: E731
        assert has(lambda sc: fam(sc) and sc.optimizer["type"] == "adam")
        assert has(lambda sc: fam(sc) and sc.optimizer["type"] == "gradient_descent")
        assert has(lambda sc: fam(sc) and sc.optimizer["batch_size"] == 2)
        assert has(lambda sc: fam(sc) and any(p.params["c_reg"] > 0 for p in sc.populations))
        for mode in ("random", "symmetric_initial", "symmetric"):
            assert has(lambda sc, m=mode: fam(sc) and sc.network["feedback"] == m)
    assert has(lambda sc: any(p.params.get("isi_trace_cutoff") for p in sc.populations))
    for family in ("original", "event"):  # sparse input, recurrence and readout in both families
        assert has(lambda sc, f=family: sc.family == f and all(cn.is_sparse(w) for w in sc.projections().values()))
    assert {"task-sine-original", "task-evidence-original", "task-sine-event", "task-evidence-event"} <= set(library.names())


def test_saved_scenarios_match_their_generators():
    saved = sorted(library.SCENARIO_DIR.glob("*.json"))
    assert len(saved) >= 16
    for path in saved:
        name = path.stem
        assert name in library.LIBRARY, f"{path.name} has no generator"
        assert path.stat().st_size <= library.MAX_JSON_BYTES
        fresh = json.loads(json.dumps(library.build(name).to_dict()))
        assert json.loads(path.read_text()) == fresh, f"{path.name} is stale: run python -m validation.scenario_library --write"


def test_every_library_scenario_builds():
    """Generated-on-the-fly scenarios (the event sine task) need eprop_plugins.tasks_event."""
    for name in library.names():
        sc, source = library.get(name)
        sc.validated()
        assert source in ("generated", f"saved {name}.json")


@pytest.mark.parametrize("name", [n for n in library.names() if not n.startswith("task-")])
def test_hand_made_scenarios_exercise_spikes_and_learning(name):
    """Each population spikes and every projection learns, so a wrong backend cannot pass by doing nothing."""
    sc = library.get(name)[0].validated()
    res = reference_run(sc)
    z = res.traces["z"]
    start = 0
    for pop in sc.populations:
        assert z[:, start : start + pop.size].sum() >= 2 * pop.size, (name, pop.model)
        start += pop.size
    # snapshot(): the matrix of a dense projection, the weight vector of a sparse one (results.py)
    assert np.max(np.abs(res.weights["w_out"][-1] - cn.snapshot(sc.w_out))) > 1e-4
    assert np.max(np.abs(res.weights["w_in"][-1] - cn.snapshot(sc.w_in))) > 1e-7


# ------------------------------------------------------------------------------------------ compare
def test_identical_results_pass_with_zero_error(small_reference):
    sc, ref = small_reference
    cmp = compare_results(sc, ref, copy.deepcopy(ref))
    assert cmp.status == "pass" and cmp.horizon == sc.n_steps and cmp.first_spike_mismatch is None
    assert all(q.max_rel_err == 0.0 for q in cmp.quantities if q.status == "pass" and q.max_rel_err is not None)
    assert {q.name for q in cmp.quantities} >= {"spikes", "traces/v", "synapse/ebar", "weight_events/w", "weights/w_rec", "losses"}


def test_one_changed_value_names_trace_step_and_neuron(small_reference):
    sc, ref = small_reference
    got = copy.deepcopy(ref)
    got.traces["learning_signal"][123, 4] *= 1 + 1e-9
    cmp = compare_results(sc, ref, got)
    assert cmp.status == "fail"
    assert cmp.first_failure["quantity"] == "traces/learning_signal"
    assert cmp.first_failure["step"] == 123 and cmp.first_failure["index"] == 4
    # below the tolerance: passes
    got.traces["learning_signal"][123, 4] = ref.traces["learning_signal"][123, 4] * (1 + 1e-14)
    assert compare_results(sc, ref, got).status == "pass"


def test_spike_mismatch_sets_the_horizon(small_reference):
    sc, ref = small_reference
    got = copy.deepcopy(ref)
    step = 200
    got.traces["z"][step, 2] = 1 - got.traces["z"][step, 2]
    got.traces["v"][step + 5 :] += 1.0  # beyond the horizon: not compared
    cmp = compare_results(sc, ref, got)
    assert cmp.status == "fail" and cmp.horizon == step
    assert cmp.first_spike_mismatch["step"] == step and cmp.first_spike_mismatch["neuron"] == 2
    assert cmp.first_failure["quantity"] == "spikes" and cmp.first_failure["step"] == step
    v = next(q for q in cmp.quantities if q.name == "traces/v")
    assert v.status == "pass" and v.compared == step * sc.n_rec


def test_time_shift_is_recognised(small_reference):
    sc, ref = small_reference
    got = copy.deepcopy(ref)
    got.traces["readout_v"] = np.vstack([ref.traces["readout_v"][:1], ref.traces["readout_v"][:-1]])
    q = next(q for q in compare_results(sc, ref, got).quantities if q.name == "traces/readout_v")
    assert q.status == "fail" and "1 step(s) later" in q.note


def test_weight_event_errors_and_nan_fail(small_reference):
    sc, ref = small_reference
    got = copy.deepcopy(ref)
    row = 1000
    got.weight_events["w"][row] += 1e-6
    cmp = compare_results(sc, ref, got)
    q = next(q for q in cmp.quantities if q.name == "weight_events/w")
    assert q.status == "fail" and q.first_diverging_step == int(ref.weight_events["step"][row])
    got = copy.deepcopy(ref)
    got.traces["psi"][7, 0] = np.nan
    assert compare_results(sc, ref, got).first_failure["quantity"] == "traces/psi"


def test_missing_traces_are_reported_not_failed(small_reference):
    sc, ref = small_reference
    got = copy.deepcopy(ref)
    del got.traces["fr_reg"]
    got.synapse_traces = {}
    got.weights = {}
    cmp = compare_results(sc, ref, got)
    assert cmp.status == "pass"
    assert {q.name for q in cmp.quantities if q.status == "missing"} >= {"traces/fr_reg", "synapse/e", "weights/w_in"}


# ------------------------------------------------------------------------------------------ runner
def test_perturbed_backend_fails_naming_scenario_trace_and_step():
    """The suite's self-test: tau_m of population 0 nudged by 1e-7 relative in a reference run."""
    bad = PerturbedBackend.from_spec("populations.0.params.tau_m*1.0000001")
    suite = run_validation(SMALL, ["reference", "bad"], extra_backends={"bad": bad})
    assert suite.exit_status() == 1
    for outcome in suite.scenarios:
        assert outcome.cells["reference"].status == "pass"
        cell = outcome.cells["bad"]
        assert cell.status == "fail", (outcome.name, cell.reason)
        # independently: the first step at which v of population 0 can differ is its first input arrival
        sc = library.get(outcome.name)[0].validated()
        n0 = sc.populations[0].size
        first = min(int(t[0]) for i, t in enumerate(sc.input_spikes) if len(t) and np.any(sc.w_in[:n0, i] != 0))
        ff = cell.comparison.first_failure
        assert ff["quantity"] == "traces/v"
        ref = reference_run(sc)
        nudged = reference_run(perturb_scenario(sc, "populations.0.params.tau_m", lambda v: v * 1.0000001))
        rel = np.abs(nudged.traces["v"] - ref.traces["v"]).max(axis=1) / np.abs(ref.traces["v"]).max()
        # v of population 0 first differs after its first input arrival (alpha enters with the decay)
        assert ff["step"] == int(np.nonzero(rel > sc.tolerance["rtol"])[0][0]) > first
        assert f"first diverges at step {ff['step']}" in cell.reason and "traces/v" in cell.reason
    failures = {(s, c.backend) for s, c in suite.failures()}
    assert failures == {(n, "bad") for n in SMALL}


def test_reference_matches_the_public_sine_losses():
    suite = run_validation(["task-sine-original"], ["reference"])
    out = suite.scenarios[0]
    exp = out.reference["expected_losses"]
    assert exp["status"] == "pass" and exp["max_rel_err"] < 1e-10
    assert out.cells["reference"].status == "pass" and suite.exit_status() == 0


def test_not_installed_backend_is_shown_and_require_fails():
    class Absent:
        families = ("original", "event")

        def check(self):
            raise ImportError("the simulator 'absent' is not installed")

        def run(self, *a, **k):  # pragma: no cover - never called
            raise AssertionError("run() of an absent backend")

    suite = run_validation(["orig-lif-single"], ["reference", "absent"], extra_backends={"absent": Absent()})
    cell = suite.scenarios[0].cells["absent"]
    assert cell.status == "not installed" and "not installed" in cell.reason
    assert suite.exit_status() == 0
    suite = run_validation(["orig-lif-single"], ["reference", "absent"], extra_backends={"absent": Absent()},
                           require=["absent"])
    assert suite.missing_required() == ["absent"] and suite.exit_status() == 1


def test_not_applicable_cells():
    """n/a comes from the registry (the one home of backend limits) or from an extra backend's hook."""
    sym = library.get("orig-rec-symmetric")[0].validated()
    for name in ("nest-builtin", "nestml"):
        reason = not_applicable(name, object(), ("original", "event"), sym)
        assert reason == registry.unsupported(name, sym) and "fixed" in reason and "§3b" in reason
        assert not_applicable(name, object(), ("original", "event"), library.get("orig-rec-mse-gd")[0].validated()) is None
    assert not_applicable("brian2", object(), ("original", "event"), sym) is None
    assert "original" in not_applicable("x", object(), ("original",), library.get("event-lif-single")[0].validated())

    class NoCE:
        families = ("original",)

        def unsupported(self, sc):
            return "no cross-entropy readout" if sc.readout["loss"] == "cross_entropy" else None

        def run(self, sc, **kw):
            return reference_run(sc, **kw)

    suite = run_validation(SMALL, ["noce"], extra_backends={"noce": NoCE()})
    assert [s.cells["noce"].status for s in suite.scenarios] == ["pass", "n/a"]
    assert suite.exit_status() == 0


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="allowed values"):
        run_validation(SMALL, ["no-such-backend"])
    with pytest.raises(ValueError, match="known scenarios"):
        run_validation(["no-such-scenario"], ["reference"])
    with pytest.raises(ParameterError, match="populations"):
        PerturbedBackend.from_spec("populations.9.params.tau_m*2").run(library.get("orig-lif-single")[0].validated())
    with pytest.raises(ParameterError, match="PATH"):
        PerturbedBackend.from_spec("tau_m~2")


def test_registry_backends_are_listed_with_their_status():
    described = describe_backends(registry.names(), {}, ["reference"])
    assert [b["name"] for b in described] == registry.names()
    for b in described:
        assert (b["available"], b["reason"]) == registry.status(b["name"])
        assert b["required"] == (b["name"] == "reference")


# ------------------------------------------------------------------------------------------ CLI + report
class _Html(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def _cli(argv: list[str], **kw) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(parser.parse_args(argv), stream=out, progress_stream=err, **kw)
    return code, out.getvalue(), err.getvalue()


def test_cli_writes_valid_report_json_html_and_plots(tmp_path):
    code, out, err = _cli(["--backends", "reference", "--scenarios", *SMALL, "--out", str(tmp_path),
                           "--perturb", "readout.tau_m*1.00000001"])
    assert code == 1
    assert "perturbed-1" in out and "FAIL" in out and "orig-rec-ce-adam x perturbed-1" in out
    assert "[  4/4]" in err  # progress lines
    doc = json.loads((tmp_path / "report.json").read_text())
    validate(doc)
    assert doc["summary"]["counts"]["fail"] == 2 and doc["summary"]["exit_status"] == 1
    assert {(f["scenario"], f["backend"]) for f in doc["summary"]["failures"]} == {(n, "perturbed-1") for n in SMALL}
    f0 = doc["summary"]["failures"][0]
    # the readout time constant first shows in the readout potential and what is computed from it
    assert f0["quantity"] in ("traces/readout_v", "traces/y", "traces/error", "traces/learning_signal")
    assert isinstance(f0["step"], int)
    s0 = doc["scenarios"][0]
    assert s0["tolerance"]["why"] and s0["source"] == "saved orig-lif-single.json"
    assert len(s0["plots"]) == 2 and all((tmp_path / p).stat().st_size > 5000 for p in s0["plots"])
    parser = _Html()
    html = (tmp_path / "report.html").read_text()
    parser.feed(html)
    assert parser.tags["table"] >= 4 and len(parser.images) == 4
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='plots/" not in html and 'src="plots/' not in html  # self-contained


def test_long_error_lines_are_drawn_as_bin_maxima_that_keep_every_peak():
    from validation.plots import MAX_POINTS, _binned_max

    rng = np.random.default_rng(0)
    err = rng.uniform(1e-17, 1e-15, 11250)
    err[[0, 4321, 11249]] = [3e-3, 2e-1, 5e-2]  # isolated peaks, first and last step included
    steps, drawn = _binned_max(err)
    assert steps.size == drawn.size <= MAX_POINTS and steps[0] == 0
    width = steps[1]
    for k in (0, 4321, 11249):
        assert drawn[k // width] == err[k]  # the bin holding the peak draws it
    assert np.all(drawn >= err[:: width][: drawn.size])
    short = err[:100]
    assert np.array_equal(_binned_max(short)[1], short)


def test_cli_passes_without_perturbation_and_lists(tmp_path):
    code, out, _ = _cli(["--backends", "reference", "--scenarios", "orig-lif*", "--out", str(tmp_path), "--no-plots"])
    assert code == 0 and "PASSED" in out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [s["name"] for s in doc["scenarios"]] == ["orig-lif-single", "orig-lif-tref0", "orig-lif-tref5"]
    code, out, _ = _cli(["--list"])
    assert code == 0 and "task-sine-original" in out and "reference" in out
    code, out, _ = _cli(["--schema"])
    assert code == 0 and json.loads(out) == REPORT_SCHEMA
    code, out, _ = _cli(["--scenarios", "nope"])
    assert code == 2 and "no such scenario" in out


def test_report_records_each_cells_peak_memory_and_the_largest_process(tmp_path):
    code, out, _ = _cli(["--backends", "reference", "nest-builtin", "--scenarios", "orig-lif-single", "--out",
                         str(tmp_path), "--no-plots", "--jobs", "1"])
    assert code == 0, out
    doc = json.loads((tmp_path / "report.json").read_text())
    cells = doc["scenarios"][0]["results"]
    for name, cell in cells.items():
        m = cell["memory"]
        assert 20 < m["rss_start_mb"] <= m["peak_rss_mb"] < 1e5 and m["rss_growth_mb"] >= 0, (name, m)
        assert m["child_peak_mb"] >= 0
    assert cells["nest-builtin"]["memory"]["peak_rss_mb"] >= cells["reference"]["memory"]["peak_rss_mb"]
    mem = doc["summary"]["memory"]
    assert mem["goal_mb"] == 2000.0 and mem["within_goal"] == (mem["largest_process_mb"] < 2000.0)
    peaks = [c["memory"]["peak_rss_mb"] for c in cells.values()] + [doc["scenarios"][0]["memory"]["peak_rss_mb"]]
    assert mem["largest_worker_mb"] == max(peaks)
    assert mem["largest_process_mb"] == max(mem["largest_worker_mb"], mem["main_process_mb"])
    if mem["scenario"] is not None:  # the cell named raised its process to the largest peak
        raiser = cells.get(mem["backend"]) or {"memory": doc["scenarios"][0]["memory"]}
        assert raiser["memory"]["peak_rss_mb"] == mem["largest_worker_mb"] and raiser["memory"]["rss_growth_mb"] > 0
    assert re.search(r"largest process \d+\.\d\d GB.*(within|ABOVE) the 2 GB goal", out)
    assert "<h2>Memory</h2>" in (tmp_path / "report.html").read_text()


def test_a_backend_run_in_a_process_of_its_own_gives_the_same_result(small_reference):
    from validation.isolated import run_isolated

    sc, ref = small_reference
    seen = []
    result, peak = run_isolated("reference", None, sc, record_weight_events=True,
                                on_iteration=lambda i, loss: seen.append((i, loss)))
    assert 20 < peak < 2000 and seen == list(enumerate(ref.losses.tolist()))
    assert np.array_equal(result.losses, ref.losses)
    for key, trace in ref.traces.items():
        assert np.array_equal(result.traces[key], trace), key
    for key, col in ref.weight_events.items():
        assert np.array_equal(result.weight_events[key], col), key
    perturbed = PerturbedBackend.from_spec("readout.tau_m*1.00000001")  # an extra backend is sent along
    other, _ = run_isolated("perturbed-1", perturbed, sc, record_weight_events=False, on_iteration=lambda i, x: None)
    assert not np.array_equal(other.traces["readout_v"], ref.traces["readout_v"])


def _isolated_in_a_daemon(channel, sc):
    from validation.isolated import run_isolated

    result, peak = run_isolated("reference", None, sc, record_weight_events=False, on_iteration=lambda i, x: None)
    channel.send(result.losses.tolist())


def test_a_validation_worker_can_run_a_backend_in_a_process_of_its_own(small_reference):
    import multiprocessing as mp

    sc, ref = small_reference
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_isolated_in_a_daemon, args=(sender, sc), daemon=True)  # as validation.workers
    worker.start()
    assert receiver.poll(120) and receiver.recv() == ref.losses.tolist()
    worker.join(30)


def test_largest_process_names_the_cell_that_raised_the_peak():
    from validation.memory import largest
    from validation.outcomes import Cell, ScenarioOutcome

    def outcome(name, cells, after):
        s = ScenarioOutcome(name=name, memory={"peak_rss_mb": after, "rss_growth_mb": 0.0})
        s.cells = {b: Cell(b, "pass", peak_rss_mb=p, worker_peak_mb=p, rss_growth_mb=g, child_peak_mb=c)
                   for b, p, g, c in cells}
        return s

    # a later scenario of the same process sees the same peak without raising it
    runs = [outcome("a", [("reference", 300.0, 100.0, 0.0), ("brian2", 1900.0, 1600.0, 700.0)], 1900.0),
            outcome("b", [("reference", 1900.0, 0.0, 700.0)], 1900.0)]
    mem = largest(runs, main_peak_mb=150.0)
    assert (mem["largest_process_mb"], mem["scenario"], mem["backend"]) == (1900.0, "a", "brian2")
    assert mem["within_goal"] and mem["largest_child_mb"] == 700.0
    assert largest(runs, main_peak_mb=2500.0)["scenario"] is None  # the main process is the largest
    assert not largest(runs, main_peak_mb=2500.0)["within_goal"]
    # a cell in a process of its own: its peak is its own, the worker's stays
    runs.append(outcome("c", [], 1900.0))
    runs[-1].cells["pynn-brian2"] = Cell("pynn-brian2", "pass", peak_rss_mb=1950.0, worker_peak_mb=1900.0,
                                         rss_growth_mb=0.0, isolated=True)
    mem = largest(runs)
    assert (mem["largest_process_mb"], mem["scenario"], mem["backend"]) == (1950.0, "c", "pynn-brian2")


def test_schema_rejects_malformed_reports(tmp_path):
    _cli(["--backends", "reference", "--scenarios", "orig-lif-single", "--out", str(tmp_path), "--no-plots"])
    doc = json.loads((tmp_path / "report.json").read_text())
    validate(doc)
    broken = copy.deepcopy(doc)
    del broken["summary"]["counts"]["pass"]
    with pytest.raises(SchemaError, match=r"\$\.summary\.counts: required field 'pass'"):
        validate(broken)
    broken = copy.deepcopy(doc)
    broken["scenarios"][0]["results"]["reference"]["status"] = "ok-ish"
    with pytest.raises(SchemaError, match="is not one of"):
        validate(broken)
    broken = copy.deepcopy(doc)
    broken["seconds"] = "fast"
    with pytest.raises(SchemaError, match=r"\$\.seconds: str is not of type number"):
        validate(broken)


# ------------------------------------------------------------------------------------------ builds, jobs
class CompiledReference:
    """A backend that 'compiles' one build per family (a marker file) before running the reference.

    Module-level, so that worker processes can unpickle it; its builds are files, so every process
    sees them, and every build is logged, so that a test can count them.
    """

    families = ("original", "event")
    summary = "reference behind a fake per-family build"

    def __init__(self, root):
        self.root = Path(root)

    def build_key(self, sc):
        return f"fake-{sc.family}"

    def is_built(self, sc):
        return (self.root / self.build_key(sc)).exists()

    def run(self, sc, *, record_weight_events=True, on_iteration=None):
        import time

        compile_seconds = 0.0
        if not self.is_built(sc):
            t0 = time.perf_counter()
            time.sleep(0.3)
            (self.root / self.build_key(sc)).write_text("built")
            with open(self.root / "builds.log", "a") as log:
                log.write(self.build_key(sc) + "\n")
            compile_seconds = time.perf_counter() - t0
        res = reference_run(sc, record_weight_events=record_weight_events, on_iteration=on_iteration)
        res.meta["compile_seconds"] = compile_seconds
        return res


INTERLEAVED = ["orig-lif-single", "event-lif-single", "orig-lif-tref0", "event-lif-tref0", "orig-lif-tref5"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_scenarios_sharing_a_build_run_together_and_each_build_is_made_once(tmp_path, jobs):
    backend = CompiledReference(tmp_path)
    code, out, err = _cli(["--backends", "reference", "fake", "--scenarios", *INTERLEAVED, "--out", str(tmp_path / "r"),
                           "--no-plots", "--jobs", str(jobs)], extra_backends={"fake": backend})
    assert code == 0, out + err
    assert sorted((tmp_path / "builds.log").read_text().split()) == ["fake-event", "fake-original"]
    assert "2 build(s) to compile first" in err
    building = [line for line in err.splitlines() if line.startswith("building ")]
    assert [line.split(" (")[0] for line in building] == ["building 1 of 2", "building 2 of 2"]
    assert {line.split("(")[1].split(")")[0] for line in building} == {"fake, fake-original", "fake, fake-event"}
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    validate(doc)
    assert doc["jobs"] == jobs and [s["name"] for s in doc["scenarios"]] == INTERLEAVED  # report order: as asked
    cells = [s["results"]["fake"] for s in doc["scenarios"]]
    assert [c["build_key"] for c in cells] == ["fake-original", "fake-event", "fake-original", "fake-event",
                                               "fake-original"]
    assert sum(c["compile_seconds"] > 0.25 for c in cells) == 2
    timing = doc["summary"]["timing"]["fake"]
    assert timing["builds"] == 2 and timing["cells"] == 5 and 0.5 < timing["compile_seconds"] <= timing["seconds"]
    assert doc["summary"]["timing"]["reference"]["builds"] == 0
    assert "compile s (builds)" in out
    if jobs == 1:  # one process: the cells of one build follow each other
        ran = [m.group(1) for m in re.finditer(r"(\S+) x fake", err)]
        assert ran == ["orig-lif-single", "orig-lif-tref0", "orig-lif-tref5", "event-lif-single", "event-lif-tref0"]
    # a second run: everything built, nothing announced
    code, _, err = _cli(["--backends", "fake", "--scenarios", *INTERLEAVED, "--out", str(tmp_path / "r2"),
                         "--no-plots", "--jobs", str(jobs)], extra_backends={"fake": backend})
    assert code == 0 and "building" not in err and len((tmp_path / "builds.log").read_text().split()) == 2


class CrashingReference:
    """The reference, except that the process dies (SIGKILL) on one scenario, as a simulator crash would."""

    families = ("original", "event")

    def __init__(self, crash_on):
        self.crash_on = crash_on

    def run(self, sc, *, record_weight_events=True, on_iteration=None):
        if sc.name == self.crash_on:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return reference_run(sc, record_weight_events=record_weight_events, on_iteration=on_iteration)


def test_a_worker_that_dies_costs_only_its_scenario(tmp_path):
    crashy = CrashingReference("event-lif-single")
    code, out, err = _cli(["--backends", "reference", "crashy", "--scenarios", *INTERLEAVED, "--out", str(tmp_path),
                           "--no-plots", "--jobs", "2"], extra_backends={"crashy": crashy})
    assert code == 1
    doc = json.loads((tmp_path / "report.json").read_text())
    status = {s["name"]: s["results"]["crashy"]["status"] for s in doc["scenarios"]}
    assert status == {n: "error" if n == "event-lif-single" else "pass" for n in INTERLEAVED}
    reason = doc["scenarios"][1]["results"]["crashy"]["reason"]
    assert "worker process died (exit code -9)" in reason


def test_workers_that_retire_are_replaced_and_the_report_is_unchanged(tmp_path, monkeypatch):
    """A worker above the retirement bound after a scenario is replaced (here: after every scenario)."""
    code, _, err = _cli(["--backends", "reference", "--scenarios", *INTERLEAVED, "--out", str(tmp_path / "one"),
                         "--no-plots", "--jobs", "1"])
    assert code == 0, err
    monkeypatch.setenv("EPROP_WORKER_RETIRE_MB", "1")
    code, out, err = _cli(["--backends", "reference", "--scenarios", *INTERLEAVED, "--out", str(tmp_path / "two"),
                           "--no-plots", "--jobs", "2"])
    assert code == 0, out + err
    assert "died" not in out + err
    one, two = load_report(tmp_path / "one" / "report.json"), load_report(tmp_path / "two" / "report.json")
    result = compare_reports(one, two)
    assert result.same and result.cells == len(INTERLEAVED), result.text()
    assert all(s["results"]["reference"]["status"] == "pass" for s in two["scenarios"])


def test_build_plan_order_and_exclusions():
    """Build groups run consecutively; two workers never make the same build; large scenarios start first,
    the largest first, beside anything."""
    keys = {"a": {"x": "k1"}, "b": {"x": "k2"}, "c": {"x": "k1"}, "d": {"x": "k2"}, "big": {}, "big2": {}, "e": {}}
    plan = BuildPlan(keys, todo={("x", "k1"), ("x", "k2")}, sizes={"big": 3e5, "big2": 9e5, "a": 10.0})
    assert plan.large == {"big", "big2"}  # at least LARGE_SIZE
    remaining = list(keys)

    def pick(last, worker):
        got = plan.pick(remaining, last, worker)
        if got is not None:
            remaining.remove(got)
        return got

    assert pick(None, 0) == "big2"  # the largest first
    assert pick(None, 1) == "big"  # beside it: large scenarios hold processes of their own
    assert pick(None, 2) == "a"  # then heavy (builds k1) before light
    assert pick(None, 3) == "b"  # another build (k2) beside k1; c needs k1
    assert pick(None, 4) == "e"  # c and d wait for the builds they need
    plan.finished("e")
    assert pick("e", 4) is None  # everything left waits
    plan.finished("a")
    assert pick("a", 2) == "c"  # the rest of k1's group next (light now)
    plan.finished("c")
    assert pick("c", 2) is None  # d needs k2 (being built)
    plan.finished("b")
    assert pick("b", 3) == "d"
    assert not remaining


def test_a_finished_cell_releases_its_build_before_its_scenario_ends():
    """A scenario waiting only for a build another worker makes starts as soon as that backend's cell ends."""
    keys = {"task": {"nestml": "m", "brian2": "t"}, "small": {"nestml": "m"}}
    plan = BuildPlan(keys, todo={("nestml", "m"), ("brian2", "t")}, sizes={"task": 1e6})
    remaining = list(keys)
    assert plan.pick(remaining, None, 0) == "task"
    remaining.remove("task")
    assert plan.pick(remaining, None, 1) is None  # needs the module the task's nestml cell builds
    plan.cell_finished("task", "nestml")
    assert plan.pick(remaining, None, 1) == "small"  # the task is still running its other cells
    assert plan.unbuilt("task") == {("brian2", "t")}


def test_two_jobs_give_the_same_report_as_one(tmp_path):
    reports = {}
    for jobs in (1, 2):
        code, out, err = _cli(["--backends", "reference", "--scenarios", *SMALL, "event-rec-mse-gd", "--out",
                               str(tmp_path / str(jobs)), "--perturb", "readout.tau_m*1.00000001", "--jobs", str(jobs)])
        assert code == 1, out + err
        reports[jobs] = load_report(tmp_path / str(jobs) / "report.json")
    assert reports[2]["jobs"] == 2 and reports[1]["jobs"] == 1
    result = compare_reports(reports[1], reports[2])
    assert result.same and result.cells == 6, result.text()

    def strip(x):  # everything but wall times, compile times, memory and the command line
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items()
                    if k not in ("seconds", "compile_seconds", "created", "command", "jobs", "timing", "memory")}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    assert strip(reports[1]) == strip(reports[2])
    assert len(reports[2]["scenarios"][0]["plots"]) == 2  # drawn in the worker, listed in the report
    for p in reports[2]["scenarios"][0]["plots"]:
        assert (tmp_path / "2" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_reports_names_every_difference(tmp_path):
    code, _, _ = _cli(["--backends", "reference", "--scenarios", *SMALL, "--out", str(tmp_path / "old"), "--no-plots",
                       "--perturb", "readout.tau_m*1.00000001", "--jobs", "1"])
    assert code == 1
    old = load_report(tmp_path / "old")
    same = copy.deepcopy(old)
    assert compare_reports(old, same).same
    new = copy.deepcopy(old)
    cell = new["scenarios"][1]["results"]["perturbed-1"]
    q = next(q for q in cell["comparison"]["quantities"] if q["max_rel_err"])
    q["max_rel_err"] *= 1.5
    new["scenarios"][0]["results"]["reference"]["status"] = "fail"
    del new["scenarios"][0]["results"]["perturbed-1"]
    result = compare_reports(old, new)
    found = {(d.scenario, d.backend, d.what) for d in result.differences}
    assert (SMALL[0], "reference", "status") in found
    assert (SMALL[0], "perturbed-1", "cell") in found
    assert (SMALL[1], "perturbed-1", f"{q['name']} max_rel_err") in found
    assert len(result.differences) == 3 + (q["max_rel_err"] / 1.5 == max(
        x["max_rel_err"] or 0 for x in cell["comparison"]["quantities"]))  # + the cell maximum if q held it
    # within a stated factor, the error change is accepted (the status and the missing cell are not)
    loose = compare_reports(old, new, factor=2.0)
    assert {(d.scenario, d.what) for d in loose.differences} == {(SMALL[0], "status"), (SMALL[0], "cell")}
    # the command line: prints the differences, exit status 1; 0 for identical reports; 2 for a bad file
    (tmp_path / "new.json").write_text(json.dumps(new))
    stream = io.StringIO()
    assert compare_reports_main([str(tmp_path / "old" / "report.json"), str(tmp_path / "new.json")], stream=stream) == 1
    assert "difference(s)" in stream.getvalue() and "status: pass -> fail" in stream.getvalue()
    stream = io.StringIO()
    assert compare_reports_main([str(tmp_path / "old"), str(tmp_path / "old" / "report.json")], stream=stream) == 0
    assert "no differences" in stream.getvalue()
    (tmp_path / "bad.json").write_text("{}")
    assert compare_reports_main([str(tmp_path / "bad.json"), str(tmp_path / "new.json")], stream=io.StringIO()) == 2
    # eprop validate --compare-to: the same check on the report just written
    code, out, _ = _cli(["--backends", "reference", "--scenarios", *SMALL, "--out", str(tmp_path / "again"),
                         "--no-plots", "--jobs", "1", "--compare-to", str(tmp_path / "new.json")])
    assert code == 1 and "difference(s)" in out
    code, out, _ = _cli(["--backends", "reference", "--scenarios", *SMALL, "--out", str(tmp_path / "again"),
                         "--no-plots", "--jobs", "1", "--perturb", "readout.tau_m*1.00000001",
                         "--compare-to", str(tmp_path / "old")])
    assert code == 1 and "no differences" in out  # the perturbed cells still fail, as before


# ------------------------------------------------------------------------------------------ real backends
def test_nest_builtin_passes_one_scenario_per_family_and_symmetric_is_not_applicable():
    names = ["orig-rec-ce-adam", "event-rec-isi-cutoff", "orig-rec-symmetric"]
    suite = run_validation(names, ["nest-builtin"], require=["nest-builtin"])
    cells = [s.cells["nest-builtin"] for s in suite.scenarios]
    assert [c.status for c in cells] == ["pass", "pass", "n/a"], [c.reason for c in cells]
    for c in cells[:2]:
        assert c.comparison.horizon == c.comparison.n_steps
        compared = {q.name for q in c.comparison.quantities if q.status == "pass"}
        assert {"spikes", "traces/v", "traces/learning_signal", "weight_events/w", "losses"} <= compared
    assert suite.exit_status() == 0


@pytest.mark.slow
def test_full_default_validation_passes_on_every_registered_backend(tmp_path):
    """`eprop validate` with every backend required: the issue's definition of done (< 10 min)."""
    import time

    t0 = time.perf_counter()
    code, out, _ = _cli(["--out", str(tmp_path), "--require", *registry.names()])
    seconds = time.perf_counter() - t0
    assert code == 0, out
    doc = json.loads((tmp_path / "report.json").read_text())
    validate(doc)
    assert doc["summary"]["counts"]["pass"] >= len(library.names()) * 2
    assert seconds < 600, seconds


_ORPHAN_PARENT = """
import multiprocessing as mp, os, sys, time
from validation.workers import _worker_main
if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    tasks, channel = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_worker_main, args=(tasks, channel, ["reference"], {}, {}, False, None),
                       kwargs={"parent": os.getpid()})
    proc.start()
    print(proc.pid, flush=True)
    time.sleep(600)
"""


def test_an_idle_worker_exits_when_its_parent_is_killed(tmp_path):
    """A killed ``eprop validate`` (SIGKILL, no clean-up) leaves no worker behind."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(_ORPHAN_PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=str(Path(__file__).resolve().parents[1]))
    worker = int(parent.stdout.readline())
    assert Path(f"/proc/{worker}").exists()
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        if Path(f"/proc/{worker}/stat").read_text().split(")")[-1].split()[0] == "Z":
            break  # exited, waiting for its new parent to reap it
        time.sleep(0.2)
    alive = Path(f"/proc/{worker}").exists() and Path(f"/proc/{worker}/stat").read_text().split(")")[-1].split()[0] != "Z"
    assert not alive, f"the worker outlived its killed parent by 20 s: {Path(f'/proc/{worker}/stat').read_text()[:200]}"
