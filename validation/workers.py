"""Worker processes of a validation run: each runs whole scenarios and sends back their outcomes.

The parent keeps the display and the :class:`~validation.builds.BuildPlan`; a worker gets one
scenario at a time, runs it (:func:`validation.cells.run_scenario`, its ``on_scenario`` hook
included) and sends its progress and its outcome through one queue.  Workers are started with
``spawn`` (no simulator state is inherited), and one that dies is replaced.  A worker that holds
more than :data:`RETIRE_MB` after a scenario (compilers' and simulators' memory that Python does not
give back) retires and is replaced, so that every scenario starts in a small process and none of
them pushes a worker past the 2 GB goal (measured: a worker that had compiled 30 builds held 1.7 GB
before a long task's reference run added 0.5 GB).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from typing import Any, Callable, Sequence

from .builds import BuildPlan
from .cells import run_scenario
from .isolated import picklable
from .memory import current_mb
from .outcomes import Cell, Progress, ScenarioOutcome

__all__ = ["RETIRE_MB", "picklable", "run_in_workers"]

#: a worker holding more than this after a scenario (MB resident) is replaced by a new one
#: (``$EPROP_WORKER_RETIRE_MB`` sets another bound)
RETIRE_MB = float(os.environ.get("EPROP_WORKER_RETIRE_MB", "800"))


class _QueueProgress(Progress):
    """A worker's progress, sent to the parent process (which owns the display)."""

    def __init__(self, channel: Any):
        self.channel = channel

    def build(self, scenario: str, backend: str, key: str) -> None:
        self.channel.put(("build", scenario, backend, key))

    def begin(self, scenario: str, backend: str) -> None:
        self.channel.put(("begin", scenario, backend))

    def iteration(self, scenario: str, backend: str, index: int, n_iterations: int, loss: float) -> None:
        self.channel.put(("iteration", scenario, backend, index, n_iterations, float(loss)))

    def end(self, scenario: str, cell: Cell) -> None:
        self.channel.put(("end", scenario, cell))


def _worker_main(tasks: Any, channel: Any, names: list[str], available: dict[str, dict[str, Any]],
                 extra: dict[str, Any], record_weight_events: bool, on_scenario: Callable[..., None] | None, *,
                 parent: int | None = None) -> None:
    """Worker process: run the scenarios it is sent until it gets None, or until the parent ``parent`` (pid) is gone.

    The parent passes its pid: read here, it would already be init's if the parent died while this
    process was still starting.
    """
    progress = _QueueProgress(channel)
    parent = os.getppid() if parent is None else parent
    while True:
        job = _next_job(tasks, parent)
        if job is None:
            return
        sname, build_keys, unbuilt = job
        try:
            out = run_scenario(sname, names, available, extra, build_keys, unbuilt, record_weight_events, progress,
                               on_scenario)
        except BaseException as exc:  # anything else is a bug of the runner: report it as the cells' error
            out = _crashed(sname, names, f"validation worker failed: {type(exc).__name__}: {exc}")
        rss = current_mb()
        retire = rss is not None and rss > RETIRE_MB
        channel.put(("done", sname, out, retire))
        if retire:  # wait for the parent's None (it replaces this worker), so that the exit is never a crash
            while _next_job(tasks, parent) is not None:
                pass
            return


def _next_job(tasks: Any, parent: int) -> Any:
    """The next job, or None once the parent has sent None or has died (killed, not just interrupted).

    Without the check a killed ``eprop validate`` left its idle workers waiting for ever (measured:
    two orphans still alive 17 minutes later).
    """
    while True:
        try:
            return tasks.get(timeout=_PARENT_POLL_S)
        except queue.Empty:
            if os.getppid() != parent:
                return None


#: how often an idle worker checks that its parent is alive (s)
_PARENT_POLL_S = 2.0


def _crashed(sname: str, names: Sequence[str], reason: str) -> ScenarioOutcome:
    out = ScenarioOutcome(name=sname, reference={"status": "error", "reason": reason})
    out.cells = {b: Cell(b, "error", reason) for b in names}
    return out


class _Pool:
    """``jobs`` worker processes fed one scenario at a time by the plan."""

    def __init__(self, jobs: int, args: tuple[Any, ...]):
        self.ctx = mp.get_context("spawn")
        self.channel = self.ctx.Queue()
        self.args = args
        self.workers: dict[int, tuple[Any, Any]] = {}  # id -> (process, task queue)
        self.busy: dict[int, str] = {}  # id -> scenario
        self.last: dict[int, str | None] = {}
        self.next_id = 0
        for _ in range(jobs):
            self.spawn()

    def spawn(self) -> int:
        wid = self.next_id
        self.next_id += 1
        tasks = self.ctx.Queue()
        proc = self.ctx.Process(target=_worker_main, args=(tasks, self.channel, *self.args), daemon=True,
                                name=f"eprop-validate-{wid}", kwargs={"parent": os.getpid()})
        proc.start()
        self.workers[wid] = (proc, tasks)
        self.last[wid] = None
        return wid

    def idle(self) -> list[int]:
        return [w for w in self.workers if w not in self.busy]

    def send(self, wid: int, job: tuple[Any, ...]) -> None:
        self.busy[wid] = job[0]
        self.last[wid] = job[0]
        self.workers[wid][1].put(job)

    def dead(self) -> list[tuple[int, str, int | None]]:
        """Busy workers that died: (id, scenario, exit code).  Every dead worker is replaced."""
        out = []
        for wid, (proc, _) in list(self.workers.items()):
            if not proc.is_alive():
                if wid in self.busy:
                    out.append((wid, self.busy.pop(wid), proc.exitcode))
                del self.workers[wid]
                self.spawn()
        return out

    def retire(self, wid: int) -> None:
        """Stop worker ``wid`` (idle, waiting for its None) and start a new one in its place."""
        proc, tasks = self.workers.pop(wid)
        self.last.pop(wid, None)
        tasks.put(None)
        proc.join(timeout=60)
        if proc.is_alive():
            proc.terminate()
        self.spawn()

    def worker_of(self, sname: str) -> int | None:
        return next((w for w, s in self.busy.items() if s == sname), None)

    def close(self) -> None:
        for proc, tasks in self.workers.values():
            tasks.put(None)
        for proc, _ in self.workers.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()


def run_in_workers(jobs: int, plan: BuildPlan, scen_names: list[str], names: list[str],
                   available: dict[str, dict[str, Any]], extra: dict[str, Any], record_weight_events: bool,
                   progress: Progress, on_scenario: Callable[..., None] | None) -> dict[str, ScenarioOutcome]:
    """Run ``scen_names`` in ``jobs`` worker processes in the order ``plan`` chooses; outcomes by scenario."""
    pool = _Pool(jobs, (names, available, extra, record_weight_events, on_scenario))
    remaining = list(scen_names)
    outcomes: dict[str, ScenarioOutcome] = {}
    checked = time.monotonic()
    try:
        while remaining or pool.busy:
            for wid in pool.idle():
                if not remaining:
                    break
                sname = plan.pick(remaining, pool.last[wid], wid)
                if sname is None:
                    break
                remaining.remove(sname)
                unbuilt = {b for b, _ in plan.unbuilt(sname)}
                pool.send(wid, (sname, plan.keys.get(sname, {}), unbuilt))
            try:
                msg = pool.channel.get(timeout=1.0)
            except queue.Empty:
                msg = None
            if msg is None or time.monotonic() - checked > 1.0:  # a worker killed by a signal sends nothing
                checked = time.monotonic()
                for wid, sname, code in pool.dead():
                    reason = f"validation worker process died (exit code {code}) while running this scenario"
                    outcomes[sname] = _crashed(sname, names, reason)
                    for cell in outcomes[sname].cells.values():
                        progress.end(sname, cell)
                    plan.finished(sname)
            if msg is None:
                continue
            kind = msg[0]
            if kind == "done":
                _, sname, out, retire = msg
                outcomes[sname] = out
                wid = pool.worker_of(sname)
                if wid is not None:
                    del pool.busy[wid]
                    if retire:
                        pool.retire(wid)
                plan.finished(sname)
            else:
                getattr(progress, kind)(*msg[1:])
                if kind == "end":
                    plan.cell_finished(msg[1], msg[2].backend)
    finally:
        pool.close()
    return outcomes
