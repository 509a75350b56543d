"""Project errors that wrap what a simulator raised, so a user reads one message that says what to do.

Bad *input* is a :class:`~eprop_plugins.parameters.ParameterError` (it names the field, the value and the
allowed range) and is raised before any simulator runs.  What can still go wrong inside a simulator
(a NEST ``KernelException``, a Brian2 code-generation error, a compiler failure) is re-raised by the
backend as a :class:`BackendError` that names the backend and the scenario, says what to do, and keeps
the simulator's own exception as ``original`` (and as ``__cause__``).
"""

from __future__ import annotations

__all__ = ["BackendError"]


class BackendError(RuntimeError):
    """A simulator failed on an accepted scenario.

    Parameters
    ----------
    message : str
        What failed, in the project's words.
    backend : str
        Registry name of the backend (``nest-builtin``, ``nestml``, ``brian2``, ...).
    scenario : str, optional
        Name of the scenario being run.
    hint : str
        What the user can do about it.
    original : BaseException, optional
        The simulator's exception; its type and message are appended to the text.
    """

    def __init__(self, message: str, *, backend: str, scenario: str | None = None, hint: str = "",
                 original: BaseException | None = None) -> None:
        self.backend, self.scenario, self.hint, self.original = backend, scenario, hint, original
        where = f"backend {backend}" + (f", scenario {scenario}" if scenario else "")
        text = f"{where}: {message}"
        if hint:
            text += f". {hint}"
        if original is not None:
            text += f" ({type(original).__name__}: {original})"
        super().__init__(text)
