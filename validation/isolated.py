"""One backend run in a process of its own: a large scenario's memory ends with it.

A long task on a Brian2 backend records, for its weight events, the weight of every synapse at
every step (1.3 GB for ``task-evidence-event``), and a simulator keeps its last network until the
next run.  In the process that also holds the reference's result and what earlier cells left, that
came to 3.7 GB.  The validation therefore runs each backend's cell of a large scenario
(:data:`validation.memory.LARGE_SIZE`) in a new Python process: it imports only that backend,
runs the scenario, sends the :class:`~eprop_plugins.results.Result` back and exits, and its peak
resident size is the cell's.  The numbers are those of the same run in the validation's process
(each backend is deterministic given the scenario; :mod:`validation.workers` relies on the same).
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, Callable

from eprop_plugins import backends as registry
from eprop_plugins.results import Result
from eprop_plugins.scenario import Scenario

from . import memory

__all__ = ["IsolatedRunFailed", "main", "picklable", "run_isolated"]

#: seconds between checks that the process is still alive while it sends nothing
_POLL = 0.5


def picklable(*objects: Any) -> bool:
    """Whether ``objects`` can be sent to another process."""
    try:
        pickle.dumps(objects)
    except Exception:
        return False
    return True


class IsolatedRunFailed(RuntimeError):
    """The backend's process died, or its exception could not be sent back (the message says which)."""


def _child(channel: Any, name: str, backend: Any, sc: Scenario, record_weight_events: bool) -> None:
    """The process of one run: ``("iteration", i, loss)`` messages, then the result and the peak, or the error."""
    try:
        obj = backend if backend is not None else registry.get(name)
        result = obj.run(sc, record_weight_events=record_weight_events,
                         on_iteration=lambda i, loss: channel.send(("iteration", int(i), float(loss))))
        memory.release()
        channel.send(("result", result))
        channel.send(("peak", memory.own_peak_mb()))  # after the send: its pickled copy counts
        return
    except Exception as exc:
        try:
            channel.send(("error", exc))
        except Exception:  # an exception that cannot be pickled: its type and message
            channel.send(("error", IsolatedRunFailed(f"{type(exc).__name__}: {exc}")))
    finally:
        channel.close()


def main(fd: int) -> None:
    """Entry point of the new process: the job comes and the messages go through the pipe ``fd``."""
    channel = Connection(fd)
    _child(channel, *channel.recv())


def run_isolated(name: str, backend: Any | None, sc: Scenario, *, record_weight_events: bool,
                 on_iteration: Callable[[int, float], None]) -> tuple[Result, float]:
    """Run backend ``name`` on ``sc`` in a fresh process.

    Parameters
    ----------
    name : str
        Backend name; a registered one is looked up in the new process.
    backend : object or None
        An extra (unregistered) backend, sent to the new process (it must be picklable); None for a
        registered backend.
    sc : Scenario
        The validated scenario.
    record_weight_events : bool
        Passed to the backend's ``run``.
    on_iteration : callable
        Called here with ``(index, loss)`` as the backend reports its iterations.

    Returns
    -------
    (Result, float)
        The backend's result and the peak resident size of its process (MB, :func:`validation.memory.own_peak_mb`).

    Raises
    ------
    Exception
        What the backend raised, or :class:`IsolatedRunFailed` when its process died.
    """
    # a plain new interpreter: a validation worker is a daemonic process, which multiprocessing forbids children
    ours, theirs = socket.socketpair()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-c", f"from validation.isolated import main; main({theirs.fileno()})"],
                            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
    theirs.close()  # only the child holds its end: a dead child then ends the pipe
    receiver = Connection(ours.detach())
    result = None
    try:
        try:
            receiver.send((name, backend, sc, record_weight_events))
        except OSError:
            raise IsolatedRunFailed(f"the process for {name} did not start (exit code {proc.wait(30)})") from None
        while True:
            if not receiver.poll(_POLL):
                if proc.poll() is not None and not receiver.poll(0):
                    raise IsolatedRunFailed(f"the process running {name} died (exit code {proc.returncode})")
                continue
            try:
                msg = receiver.recv()
            except EOFError:
                raise IsolatedRunFailed(f"the process running {name} died (exit code {proc.wait(30)})") from None
            if msg[0] == "iteration":
                on_iteration(msg[1], msg[2])
            elif msg[0] == "result":
                result = msg[1]
            elif msg[0] == "peak":
                return result, float(msg[1])
            else:
                raise msg[1]
    finally:
        receiver.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait()
