"""The rules a scenario must satisfy, one function per part of it.

:meth:`eprop_plugins.scenario.Scenario.validated` calls these in order; each returns the part in its
canonical form (defaults filled in, arrays as NumPy arrays of the right dtype) or raises a
:class:`~eprop_plugins.parameters.ParameterError` whose message starts with the field's dotted path
(``populations[0].params.tau_m``, ``w_rec[4][2]``, ``input_spikes[3][7]``), then the value and the
allowed range.  Nothing is converted silently: a string is not a number, ``True`` is not an integer,
a fractional spike step is not rounded, a ragged matrix is not padded.

The rules are the same for every backend, so that every backend sees the same accepted set; what a
particular simulator cannot express on top of them is listed in :mod:`eprop_plugins.backends`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import connectivity as cn
from . import parameters as par
from .connectivity import SparseWeights
from .parameters import ParameterError

__all__ = [
    "SCENARIO_KEYS", "REQUIRED_SCENARIO_KEYS", "POPULATION_KEYS", "TOLERANCE_KEYS", "PROJECTIONS",
    "show", "check_keys", "check_text", "check_flag", "check_count", "check_tolerance", "check_network",
    "check_population", "check_readout", "check_optimizer", "check_synapse", "check_sizes", "check_matrix",
    "check_weight_bounds", "check_weights", "check_projection", "check_projection_bounds", "SPARSE_KEYS",
    "check_input_spikes", "check_target", "check_learning_window_signal",
    "check_record_synapses",
]

#: Plastic projections, in the order used by weight events (``proj`` index).
PROJECTIONS = ("in", "rec", "out")

#: Every key of the ``eprop-scenario/1`` and ``/2`` JSON forms, and the ones without a default
SCENARIO_KEYS = (
    "format", "name", "description", "tolerance", "network", "populations", "readout", "optimizer", "synapse",
    "n_in", "n_out", "n_sequences", "iteration_sequences", "float32_weights", "w_in", "w_rec", "w_out", "w_fb",
    "input_spikes", "target", "learning_window_signal", "record_synapses",
)
REQUIRED_SCENARIO_KEYS = ("name", "network", "populations", "n_in", "n_out", "n_sequences", "w_in", "w_rec",
                          "w_out", "input_spikes", "target")
POPULATION_KEYS = ("model", "size", "params")
#: Keys of a sparse projection in the JSON form (``eprop-scenario/2``), all required
SPARSE_KEYS = ("shape", "post", "pre", "weight")
TOLERANCE_KEYS = ("rtol", "why")


def show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value for an error message, shortened to ``limit`` characters."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else text[: limit - 5] + " ...]"


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def check_keys(where: str, data: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> None:
    """``data`` is a mapping whose keys are all in ``allowed`` and include ``required``.

    Raises
    ------
    ParameterError
        Naming ``where.key`` of the first unknown or missing key.
    """
    if not isinstance(data, Mapping):
        raise ParameterError(f"{where or 'scenario'} = {show(data)}: allowed values are an object (mapping) "
                             f"with the keys {', '.join(allowed)}")
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in allowed:
            raise ParameterError(f"{prefix}{key}: unknown key; allowed keys are {', '.join(allowed)}")
    for key in required:
        if key not in data:
            raise ParameterError(f"{prefix}{key}: missing; it is required (no default)")


def check_text(where: str, value: Any) -> str:
    """A string field."""
    if not isinstance(value, str):
        raise ParameterError(f"{where} = {show(value)}: allowed values are strings")
    return value


def check_flag(where: str, value: Any) -> bool:
    """A boolean field (``0``/``1`` are not booleans)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{where} = {show(value)}: allowed values are true or false")
    return bool(value)


def check_count(where: str, value: Any, minimum: int = 1) -> int:
    """An integer field ``>= minimum`` (a bool, a float or a string is refused)."""
    if not _is_int(value) or value < minimum:
        raise ParameterError(f"{where} = {show(value)}: allowed range is integer >= {minimum}")
    return int(value)


def check_tolerance(value: Any) -> dict[str, Any]:
    """``{"rtol": float >= 0, "why": str}`` (``why`` optional)."""
    check_keys("tolerance", value, TOLERANCE_KEYS, ("rtol",))
    rtol = value["rtol"]
    if not _is_real(rtol) or not math.isfinite(rtol) or rtol < 0:
        raise ParameterError(f"tolerance.rtol = {show(rtol)}: allowed range is finite, >= 0")
    if "why" in value:
        check_text("tolerance.why", value["why"])
    return dict(value)


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParameterError(f"{where} = {show(value)}: allowed values are an object (mapping) of parameters")
    return value


def check_network(value: Any) -> dict[str, Any]:
    """The network part: family, dt, sequence (whole steps), learning window (within the sequence)."""
    network = par.complete("network", _mapping("network", value))
    dt = network["dt"]
    steps = par.to_steps(network["sequence"], dt, "network.sequence", allow_zero=False)
    if network["learning_window"] is not None:
        lw = par.to_steps(network["learning_window"], dt, "network.learning_window", allow_zero=False)
        if lw > steps:
            raise ParameterError(
                f"network.learning_window = {network['learning_window']} ms: allowed range is "
                f"0 < learning_window <= sequence ({network['sequence']} ms)"
            )
    return network


def check_population(k: int, model: Any, size: Any, params: Any, network: Mapping[str, Any]) -> dict[str, Any]:
    """One recurrent population: a model of the family, a size >= 1 and its completed parameters."""
    where = f"populations[{k}]"
    family, dt = network["family"], network["dt"]
    if not isinstance(model, str) or model not in par.RECURRENT_MODELS:
        raise ParameterError(f"{where}.model = {show(model)}: allowed values are {', '.join(par.RECURRENT_MODELS)}")
    if family not in par.RECURRENT_MODELS[model]:
        raise ParameterError(
            f"{where}.model = {model!r}: exists only in family {'/'.join(par.RECURRENT_MODELS[model])}, not {family!r}"
        )
    check_count(f"{where}.size", size)
    params = par.complete("recurrent", _mapping(f"{where}.params", params), family=family, model=model,
                          where=f"{where}.params")
    par.to_steps(params["tau_refrac"], dt, f"{where}.params.tau_refrac")
    if params.get("isi_trace_cutoff") is not None:
        par.to_steps(params["isi_trace_cutoff"], dt, f"{where}.params.isi_trace_cutoff", allow_zero=False)
    if params["v_min"] is not None and params["v_thresh"] < params["v_min"]:
        raise ParameterError(
            f"{where}.params.v_thresh = {params['v_thresh']} mV: allowed range is >= v_min ({params['v_min']} mV)"
        )
    return params


def check_readout(value: Any, network: Mapping[str, Any]) -> dict[str, Any]:
    """The readout part (the event family has only the mean-squared-error readout)."""
    family = network["family"]
    readout = par.complete("readout", _mapping("readout", value), family=family)
    if family == "event" and readout["loss"] != "mean_squared_error":
        raise ParameterError(
            f"readout.loss = {readout['loss']!r}: the event family supports only 'mean_squared_error'"
        )
    if readout.get("isi_trace_cutoff") is not None:
        par.to_steps(readout["isi_trace_cutoff"], network["dt"], "readout.isi_trace_cutoff", allow_zero=False)
    return readout


def check_optimizer(value: Any, family: str) -> dict[str, Any]:
    """The optimizer part (``w_min <= w_max``)."""
    optimizer = par.complete("optimizer", _mapping("optimizer", value), family=family)
    if optimizer["w_min"] > optimizer["w_max"]:
        raise ParameterError(
            f"optimizer.w_min = {optimizer['w_min']} mV: allowed range is <= w_max ({optimizer['w_max']} mV)"
        )
    return optimizer


def check_synapse(value: Any, family: str) -> dict[str, Any]:
    """The plastic-synapse part."""
    return par.complete("synapse", _mapping("synapse", value), family=family)


def check_sizes(n_in: Any, n_out: Any, n_sequences: Any, iteration_sequences: Any, *, network: Mapping[str, Any],
                readout: Mapping[str, Any], optimizer: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """Sizes and the iteration/batch structure.

    ``n_sequences`` is a multiple of ``iteration_sequences``; the optimizer's ``batch_size`` divides
    one iteration (its sequences in the original family, its time steps in the event family), so
    that every loss value covers whole batches; cross-entropy needs two readouts or more.
    """
    n_in = check_count("n_in", n_in)
    n_out = check_count("n_out", n_out)
    n_sequences = check_count("n_sequences", n_sequences)
    iteration_sequences = check_count("iteration_sequences", iteration_sequences)
    if n_sequences % iteration_sequences:
        raise ParameterError(
            f"n_sequences = {n_sequences}: allowed values are multiples of iteration_sequences ({iteration_sequences})"
        )
    batch = optimizer["batch_size"]
    if network["family"] == "original":
        unit, per_iteration = "sequences", iteration_sequences
    else:
        steps = par.to_steps(network["sequence"], network["dt"], "network.sequence", allow_zero=False)
        unit, per_iteration = "time steps", steps * iteration_sequences
    if per_iteration % batch:
        raise ParameterError(
            f"optimizer.batch_size = {batch}: allowed values divide the {per_iteration} {unit} of one iteration "
            f"({network['family']} family: a batch counts {unit})"
        )
    if readout["loss"] == "cross_entropy" and n_out < 2:
        raise ParameterError(f"n_out = {n_out}: cross_entropy needs at least 2 readouts (allowed range >= 2)")
    return n_in, n_out, n_sequences, iteration_sequences


def _index(path: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in path)


def _first_non_number(value: Any, path: tuple[int, ...] = ()) -> tuple[tuple[int, ...], Any] | None:
    """Path and value of the first entry of a nested sequence that is not a real number."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        for i, item in enumerate(value):
            found = _first_non_number(item, path + (i,))
            if found is not None:
                return found
        return None
    return None if _is_real(value) else (path, value)


def _first_ragged(value: Any, ndim: int, path: tuple[int, ...] = ()) -> tuple[tuple[int, ...], int, int] | None:
    """Path, length and expected length of the first row that breaks a rectangular ``ndim``-D shape."""
    if ndim < 2 or not isinstance(value, (list, tuple, np.ndarray)):
        return None
    lengths = [len(row) if isinstance(row, (list, tuple, np.ndarray)) else -1 for row in value]
    for i, n in enumerate(lengths):
        if n != lengths[0]:
            return path + (i,), n, lengths[0]
    for i, row in enumerate(value):
        found = _first_ragged(row, ndim - 1, path + (i,))
        if found is not None:
            return found
    return None


def numeric_array(where: str, value: Any, ndim: int, what: str) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions, refusing ragged, non-numeric and bool data.

    Parameters
    ----------
    where : str
        Field name for the messages.
    value : array_like
    ndim : int
        Required number of dimensions.
    what : str
        What the axes mean, e.g. ``"(n_rec, n_in) [post, pre]"``.
    """
    if value is None:
        raise ParameterError(f"{where} = None: allowed values are {ndim}-D arrays of numbers {what}")
    if isinstance(value, (str, bytes, Mapping)):
        raise ParameterError(f"{where} = {show(value)}: allowed values are {ndim}-D arrays of numbers {what}")
    try:  # the common case, rectangular numbers, without a walk in Python
        fast = np.asarray(value)
    except (TypeError, ValueError):
        fast = None
    if fast is not None and fast.dtype.kind in "iuf" and fast.ndim == ndim:
        return fast.astype(float)
    ragged = _first_ragged(value, ndim)
    if ragged is not None:
        path, n, expected = ragged
        got = "not a list" if n < 0 else f"{n} entries"
        raise ParameterError(f"{where}{_index(path)}: {got}, expected {expected} as {where}{_index(path[:-1])}[0] "
                             f"(a {ndim}-D array {what} has rows of equal length)")
    bad = _first_non_number(value)
    if bad is not None:
        raise ParameterError(f"{where}{_index(bad[0])} = {show(bad[1])}: allowed values are numbers")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:  # anything the walks above did not name
        raise ParameterError(f"{where}: not a {ndim}-D array of numbers {what} ({exc})") from None
    if arr.ndim != ndim:
        raise ParameterError(f"{where}: {arr.ndim}-D array of shape {arr.shape}; allowed values are {ndim}-D arrays {what}")
    return arr


def _first_non_finite(where: str, arr: np.ndarray, unit: str = "") -> None:
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        raise ParameterError(f"{where}{_index(idx)} = {show(arr[idx])}{unit}: allowed range is finite")


def check_matrix(where: str, value: Any, shape: tuple[int, int], float32: bool) -> np.ndarray:
    """A weight matrix ``[post, pre]`` of the given shape, finite, float32 values if ``float32``."""
    arr = numeric_array(where, value, 2, f"of shape {shape} [post, pre]")
    if arr.shape != shape:
        raise ParameterError(f"{where}: shape {arr.shape} does not match the sizes; expected {shape} [post, pre]")
    _first_non_finite(where, arr, " mV" if where != "w_fb" else "")
    if float32:
        bad = np.argwhere(arr != arr.astype(np.float32).astype(float))
        if bad.size:
            idx = tuple(int(i) for i in bad[0])
            raise ParameterError(f"{where}{_index(idx)} = {show(arr[idx])}: float32_weights is set, so allowed values "
                                 f"are float32 values (e.g. {float(np.float32(arr[idx]))!r})")
    return arr


def check_weight_bounds(where: str, arr: np.ndarray, optimizer: Mapping[str, Any], mask: np.ndarray | None = None) -> None:
    """Every plastic weight lies in the optimizer's ``[w_min, w_max]``.

    Backends handle an initial weight outside the bounds differently (the optimizer clips it at the
    first update, NEST refuses some at connection time), so such a scenario has no single meaning.
    """
    lo, hi = optimizer["w_min"], optimizer["w_max"]
    outside = (arr < lo) | (arr > hi)
    if mask is not None:
        outside &= mask
    bad = np.argwhere(outside)
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        raise ParameterError(
            f"{where}{_index(idx)} = {show(arr[idx])} mV: allowed range is optimizer.w_min <= w <= optimizer.w_max "
            f"({show(lo)} <= w <= {show(hi)} mV); {int(bad.shape[0])} initial weight(s) of {where} lie outside"
        )


def _raw_array(value: Any) -> np.ndarray:
    """``value`` as an array without conversion (ragged or mixed data as an object array)."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        return np.asarray(value, dtype=object)


def _index_vector(where: str, value: Any) -> np.ndarray:
    """A flat vector of integers (int64); floats, booleans and strings are refused."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ParameterError(f"{where} = {show(value)}: allowed values are flat lists of integer indices")
    if len(value) == 0:
        return np.zeros(0, dtype=np.int64)
    raw = _raw_array(value)
    if raw.ndim == 1 and raw.dtype.kind in "iu":
        return raw.astype(np.int64)
    if raw.ndim != 1:
        raise ParameterError(f"{where}: a {raw.ndim}-D array; allowed values are flat lists of integer indices")
    items = value.tolist() if isinstance(value, np.ndarray) else list(value)  # the values as given
    for k, x in enumerate(items):
        if not _is_int(x):
            raise ParameterError(f"{where}[{k}] = {show(x)}: allowed values are integer indices")
    return raw.astype(np.int64)  # pragma: no cover - integers of an object array


def _sparse_from_mapping(where: str, value: Mapping[str, Any], shape: tuple[int, int]) -> SparseWeights:
    """The JSON form ``{"shape", "post", "pre", "weight"}`` as SparseWeights, types checked strictly."""
    check_keys(where, value, SPARSE_KEYS, SPARSE_KEYS)
    sh = value["shape"]
    if (isinstance(sh, (str, bytes)) or not isinstance(sh, (Sequence, np.ndarray)) or len(sh) != 2
            or not all(_is_int(x) for x in sh)):
        raise ParameterError(f"{where}.shape = {show(sh)}: allowed values are [n_post, n_pre], expected {list(shape)}")
    post = _index_vector(f"{where}.post", value["post"])
    pre = _index_vector(f"{where}.pre", value["pre"])
    weight = numeric_array(f"{where}.weight", value["weight"], 1, "(n_connections,)")
    for name, arr in (("pre", pre), ("weight", weight)):
        if arr.size != post.size:
            raise ParameterError(f"{where}.{name}: {arr.size} entries for {post.size} in {where}.post; allowed: "
                                 f"one per connection")
    return SparseWeights((int(sh[0]), int(sh[1])), post, pre, weight)


def check_projection(where: str, value: Any, shape: tuple[int, int], *, float32: bool,
                     optimizer: Mapping[str, Any] | None, autapses: bool = True) -> cn.Weights:
    """One projection's initial weights: a dense matrix or a sparse connection list.

    Parameters
    ----------
    where : str
        Field name (``w_in``, ``w_rec``, ``w_out``, ``w_fb``).
    value : array_like, SparseWeights or mapping
        Dense ``[post, pre]`` matrix, or sparse: a :class:`~eprop_plugins.connectivity.SparseWeights`
        or its JSON form ``{"shape": [n_post, n_pre], "post": [...], "pre": [...], "weight": [...]}``.
    shape : tuple of int
        Expected ``(n_post, n_pre)``.
    float32 : bool
        Weights must be float32 values.
    optimizer : mapping or None
        Plastic projection: every weight within ``[w_min, w_max]`` (None: not plastic).
    autapses : bool
        False for ``w_rec``: a dense diagonal must be 0, a sparse list must not contain ``post == pre``.

    Returns
    -------
    ndarray or SparseWeights
        Dense float64 matrix, or SparseWeights whose connections are in the canonical order
        (:mod:`eprop_plugins.connectivity`), unique, in range, with finite weights.
    """
    if isinstance(value, (SparseWeights, Mapping)):
        sw = value if isinstance(value, SparseWeights) else _sparse_from_mapping(where, value, shape)
        cn.validate_structure(where, sw, shape, autapses=autapses)
        w = sw.weight
        if float32:
            bad = np.flatnonzero(w != w.astype(np.float32).astype(float))
            if bad.size:
                k = int(bad[0])
                raise ParameterError(f"{where}.weight[{k}] = {show(w[k])}: float32_weights is set, so allowed values "
                                     f"are float32 values (e.g. {float(np.float32(w[k]))!r})")
        out = SparseWeights(sw.shape, sw.post, sw.pre, sw.weight)  # read-only arrays: shared, not copied
        if optimizer is not None:
            check_projection_bounds(where, out, optimizer)
        return out
    arr = check_matrix(where, value, shape, float32)
    if not autapses:
        diagonal = np.flatnonzero(np.diag(arr))
        if diagonal.size:
            j = int(diagonal[0])
            raise ParameterError(f"{where}[{j}][{j}] = {show(arr[j, j])} mV: autapses are not supported; "
                                 f"allowed values on the diagonal are 0")
    if optimizer is not None:
        check_projection_bounds(where, arr, optimizer, autapses=autapses)
    return arr


def check_projection_bounds(where: str, w: cn.Weights, optimizer: Mapping[str, Any], *, autapses: bool = True) -> None:
    """Every plastic weight of a projection (either form) lies in ``[w_min, w_max]``; see :func:`check_weight_bounds`."""
    if not cn.is_sparse(w):
        check_weight_bounds(where, w, optimizer, None if autapses else ~np.eye(w.shape[0], dtype=bool))
        return
    lo, hi = optimizer["w_min"], optimizer["w_max"]
    bad = np.flatnonzero((w.weight < lo) | (w.weight > hi))
    if bad.size:
        k = int(bad[0])
        raise ParameterError(
            f"{where}.weight[{k}] = {show(w.weight[k])} mV (post {int(w.post[k])}, pre {int(w.pre[k])}): allowed "
            f"range is optimizer.w_min <= w <= optimizer.w_max ({show(lo)} <= w <= {show(hi)} mV); "
            f"{int(bad.size)} initial weight(s) of {where} lie outside")


def check_weights(w_in: Any, w_rec: Any, w_out: Any, w_fb: Any, *, n_in: int, n_rec: int, n_out: int,
                  network: Mapping[str, Any], optimizer: Mapping[str, Any], float32: bool
                  ) -> tuple[cn.Weights, cn.Weights, cn.Weights, np.ndarray | None]:
    """The four initial projections: shapes, finite, no autapses, plastic ones within the bounds.

    ``w_in``, ``w_rec`` and ``w_out`` may each be dense or sparse (:func:`check_projection`);
    ``w_fb`` (feedback, not plastic) is a dense matrix.
    """
    # every shape first, then the bounds (the order of the messages of the dense-only format)
    w_in_a = check_projection("w_in", w_in, (n_rec, n_in), float32=float32, optimizer=None)
    w_rec_a = check_projection("w_rec", w_rec, (n_rec, n_rec), float32=float32, optimizer=None, autapses=False)
    w_out_a = check_projection("w_out", w_out, (n_out, n_rec), float32=float32, optimizer=None)
    check_projection_bounds("w_in", w_in_a, optimizer)
    check_projection_bounds("w_rec", w_rec_a, optimizer, autapses=False)
    check_projection_bounds("w_out", w_out_a, optimizer)
    if w_fb is None:
        if network["feedback"] == "random":
            raise ParameterError("w_fb: missing; it is required when network.feedback = 'random'")
        return w_in_a, w_rec_a, w_out_a, None
    if isinstance(w_fb, (SparseWeights, Mapping)):
        raise ParameterError("w_fb: a sparse connection list; allowed values are dense (n_rec, n_out) matrices "
                             "(every readout sends its learning signal to every recurrent neuron)")
    return w_in_a, w_rec_a, w_out_a, check_matrix("w_fb", w_fb, (n_rec, n_out), float32)


def check_input_spikes(value: Any, *, n_in: int, steps: int, n_steps: int, family: str) -> list[np.ndarray]:
    """Per input, strictly increasing whole arrival steps within the simulated steps.

    In the original family no spike may arrive in the first step of a sequence (NEST's
    ``*_bsshslm_2020`` models drop those, so they have no common meaning).
    """
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ParameterError(f"input_spikes = {show(value)}: allowed values are a list of n_in = {n_in} spike trains")
    if len(value) != n_in:
        raise ParameterError(f"input_spikes: {len(value)} spike trains for n_in = {n_in} inputs; allowed: exactly {n_in}")
    trains = []
    for i, train in enumerate(value):
        where = f"input_spikes[{i}]"
        if isinstance(train, (str, bytes, Mapping)) or not isinstance(train, (Sequence, np.ndarray)):
            raise ParameterError(f"{where} = {show(train)}: allowed values are lists of integer time steps")
        arr = _spike_steps(where, train)
        if arr.size:
            for k in (int(np.argmin(arr)), int(np.argmax(arr))):
                if not 0 <= arr[k] < n_steps:
                    raise ParameterError(f"{where}[{k}] = {int(arr[k])}: allowed range is 0 <= step <= {n_steps - 1} "
                                         f"(the simulated steps)")
            down = np.flatnonzero(np.diff(arr) <= 0)
            if down.size:
                k = int(down[0]) + 1
                raise ParameterError(f"{where}[{k}] = {int(arr[k])}: spike steps must be strictly increasing "
                                     f"(allowed range > {int(arr[k - 1])}, the step before)")
            if family == "original":
                first = np.flatnonzero(arr % steps == 0)
                if first.size:
                    k = int(first[0])
                    raise ParameterError(
                        f"{where}[{k}] = {int(arr[k])}: a spike arrives in the first step of a sequence; the original "
                        f"family drops such spikes (NEST *_bsshslm_2020 behaviour), so allowed steps are not "
                        f"multiples of the sequence length ({steps})"
                    )
        trains.append(arr)
    return trains


def _spike_steps(where: str, train: Any) -> np.ndarray:
    """One spike train as int64 steps; integral floats (``3.0``) are the same steps, anything else is refused."""
    if len(train) == 0:
        return np.zeros(0, dtype=np.int64)
    raw = _raw_array(train)
    if raw.ndim != 1:
        raise ParameterError(f"{where} = {show(train)}: allowed values are flat lists of integer time steps")
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64)
    if raw.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw)))
        if not bad.size:
            return raw.astype(np.int64)  # 3.0 is step 3: the same value, nothing is changed
        k = int(bad[0])
        raise ParameterError(f"{where}[{k}] = {show(raw[k])}: allowed values are whole time steps (integers)")
    for k, step in enumerate(train):  # strings, booleans, nested lists: name the first one
        if not _is_int(step):
            raise ParameterError(f"{where}[{k}] = {show(step)}: allowed values are whole time steps (integers)")
    return np.asarray(train, dtype=np.int64)


def check_target(value: Any, *, n_out: int, n_steps: int, sequence_text: str) -> np.ndarray:
    """The target ``(n_out, >= n_steps)``, finite over the simulated steps; returned cut to ``n_steps``."""
    target = numeric_array("target", value, 2, f"({n_out}, {n_steps}) [readout, step]")
    if target.shape[0] != n_out:
        raise ParameterError(f"target: shape {target.shape}, expected ({n_out}, {n_steps}) [readout, step]")
    if target.shape[1] < n_steps:
        raise ParameterError(f"target: {target.shape[1]} steps is shorter than the {n_steps} simulated steps "
                             f"({sequence_text})")
    target = target[:, :n_steps]
    _first_non_finite("target", target)
    return target


def check_learning_window_signal(value: Any, *, family: str, n_steps: int) -> np.ndarray | None:
    """Event family: the per-step factor on the error, finite, ``>= n_steps`` long (cut to it)."""
    if value is None:
        return None
    if family != "event":
        raise ParameterError("learning_window_signal: only the event family takes a per-step learning window; "
                             "allowed value in the original family is null")
    arr = numeric_array("learning_window_signal", value, 1, f"({n_steps},) [step]")
    if arr.shape[0] < n_steps:
        raise ParameterError(f"learning_window_signal: {arr.shape[0]} steps is shorter than {n_steps}")
    arr = arr[:n_steps]
    _first_non_finite("learning_window_signal", arr)
    return arr


def check_record_synapses(value: Any, *, n_in: int, n_rec: int, n_out: int,
                          weights: Mapping[str, cn.Weights] | None = None) -> list[tuple[str, int, int]]:
    """``(projection, pre, post)`` triples naming existing synapses (no autapse; listed if sparse).

    ``weights`` maps ``in``/``rec``/``out`` to the validated projections (to refuse a pair a sparse
    projection does not connect).
    """
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ParameterError(f"record_synapses = {show(value)}: allowed values are lists of [projection, pre, post]")
    pres = {"in": n_in, "rec": n_rec, "out": n_rec}
    posts = {"in": n_rec, "rec": n_rec, "out": n_out}
    out = []
    for q, entry in enumerate(value):
        where = f"record_synapses[{q}]"
        if isinstance(entry, (str, bytes)) or not isinstance(entry, (Sequence, np.ndarray)) or len(entry) != 3:
            raise ParameterError(f"{where} = {show(entry)}: allowed values are [projection, pre, post]")
        proj, pre, post = entry
        if proj not in PROJECTIONS:
            raise ParameterError(f"{where} = {show(list(entry))}: projection allowed values are {', '.join(PROJECTIONS)}")
        for name, idx, n in (("pre", pre, pres[proj]), ("post", post, posts[proj])):
            if not _is_int(idx) or not 0 <= idx < n:
                raise ParameterError(f"{where} = {show(list(entry))}: {name} allowed range is integer 0..{n - 1} "
                                     f"for projection {proj!r}; not a synapse of this network")
        if proj == "rec" and pre == post:
            raise ParameterError(f"{where} = {show(list(entry))}: an autapse, which does not exist (pre != post)")
        w = None if weights is None else weights.get(proj)
        if w is not None and cn.is_sparse(w) and not bool(cn.has_connections(w, post, pre)):
            raise ParameterError(f"{where} = {show(list(entry))}: w_{proj} (sparse) has no synapse from pre {pre} "
                                 f"to post {post}; allowed are listed connections")
        out.append((str(proj), int(pre), int(post)))
    return out
