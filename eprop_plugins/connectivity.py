"""The weights of one projection in memory: a dense matrix or a list of the synapses that exist.

A projection's weights are indexed ``[post, pre]`` (see :mod:`eprop_plugins.scenario`) and are
held in one of two forms:

* a **dense** ``ndarray`` of shape ``(n_post, n_pre)``: every pair is connected, zero weights
  included (a zero synapse exists, transmits spikes and learns).  For the recurrent projection the
  diagonal is 0 and is not a synapse (no autapses);
* a :class:`SparseWeights`: only the listed pairs are connected; every other pair has no synapse,
  no weight, no weight event and never learns.

Canonical connection order
--------------------------
The connections of a projection are listed in **row-major order of the ``[post, pre]`` matrix**:
sorted by ``post``, then by ``pre`` (the order of CSR storage; the key of a pair is
``post * n_pre + pre``).  Each pair appears at most once.  A dense matrix lists all its pairs in
the same order (``post`` outer, ``pre`` inner), so a dense matrix and the :class:`SparseWeights`
holding all of its pairs list the same connections in the same order.  Per-connection vectors
(weights, weight snapshots in a :class:`~eprop_plugins.results.Result`, the weights a backend reads
back from a simulator) are in this order; :func:`connection_index` maps arbitrary ``(post, pre)``
pairs to positions in it.

Every backend uses :func:`connections` to enumerate the synapses to create, whatever the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .parameters import ParameterError

__all__ = ["SparseWeights", "Weights", "is_sparse", "connections", "from_dense", "to_dense", "shape_of",
           "n_connections", "connection_keys", "connection_index", "has_connections", "with_weights",
           "validate_structure", "mask_of", "snapshot", "DENSE_LIMIT"]

#: Largest number of matrix entries (n_post x n_pre) that helpers such as :func:`to_dense` and
#: :func:`mask_of` materialise for a sparse projection; beyond it they raise (a 5 000-neuron
#: recurrent matrix has 25 M entries: 200 MB as float64).
DENSE_LIMIT = 4_000_000


@dataclass(frozen=True, eq=False)
class SparseWeights:
    """The synapses of one sparse projection, in the canonical connection order.

    Parameters
    ----------
    shape : tuple of int
        ``(n_post, n_pre)``: sizes of the postsynaptic and presynaptic populations.
    post, pre : ndarray of int64
        Postsynaptic and presynaptic index of each synapse, ``(n_connections,)``, sorted by
        ``(post, pre)`` with no pair repeated.
    weight : ndarray of float64
        Weight of each synapse, ``(n_connections,)`` (mV; dimensionless for feedback).

    Notes
    -----
    The arrays are read-only views (no copy when they already have the dtype), so that copies of a
    scenario share them.  The constructor converts the arrays to their dtypes and checks lengths
    only; the full rules (indices in range, order, no duplicates, no autapses, finite weights) are in
    :func:`validate_structure`, which :mod:`eprop_plugins.scenario_checks` applies to every
    scenario.  Use :meth:`from_pairs` to build one from unsorted pairs.
    """

    shape: tuple[int, int]
    post: np.ndarray
    pre: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        for name, dtype in (("post", np.int64), ("pre", np.int64), ("weight", np.float64)):
            # a read-only view: several scenarios (a validated copy, a file's) share the arrays safely
            arr = np.ascontiguousarray(np.asarray(getattr(self, name)), dtype=dtype).reshape(-1).view()
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        if not self.post.size == self.pre.size == self.weight.size:
            raise ParameterError(f"sparse weights: post ({self.post.size}), pre ({self.pre.size}) and weight "
                                 f"({self.weight.size}) must have the same length")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pairs(cls, shape: tuple[int, int], post: Any, pre: Any, weight: Any) -> "SparseWeights":
        """Build from pairs in any order (sorted here into the canonical order; duplicates refused).

        Raises
        ------
        ParameterError
            A pair is out of range or appears twice.
        """
        post = np.asarray(post, dtype=np.int64).reshape(-1)
        pre = np.asarray(pre, dtype=np.int64).reshape(-1)
        weight = np.broadcast_to(np.asarray(weight, dtype=float), post.shape)
        n_post, n_pre = int(shape[0]), int(shape[1])
        if post.size and (post.min() < 0 or post.max() >= n_post or pre.min() < 0 or pre.max() >= n_pre):
            raise ParameterError(f"sparse weights: a (post, pre) pair lies outside the shape {(n_post, n_pre)}")
        order = np.lexsort((pre, post))
        out = cls((n_post, n_pre), post[order], pre[order], weight[order])
        keys = connection_keys(out)
        dup = np.flatnonzero(np.diff(keys) == 0)
        if dup.size:
            k = int(dup[0])
            raise ParameterError(f"sparse weights: the pair post {int(out.post[k])}, pre {int(out.pre[k])} "
                                 f"appears twice")
        return out

    # ------------------------------------------------------------------ properties
    @property
    def n_connections(self) -> int:
        return int(self.weight.size)

    def __len__(self) -> int:
        return self.n_connections

    @property
    def density(self) -> float:
        """Fraction of the ``n_post x n_pre`` pairs that are connected."""
        total = self.shape[0] * self.shape[1]
        return self.n_connections / total if total else 0.0

    def __repr__(self) -> str:
        return f"SparseWeights(shape={self.shape}, n_connections={self.n_connections})"


#: A projection's weights in either form
Weights = Union[np.ndarray, SparseWeights]


def is_sparse(w: Any) -> bool:
    """True for a :class:`SparseWeights`, False for a dense matrix."""
    return isinstance(w, SparseWeights)


def shape_of(w: Weights) -> tuple[int, int]:
    """``(n_post, n_pre)`` of either form."""
    return w.shape if is_sparse(w) else (int(np.shape(w)[0]), int(np.shape(w)[1]))


def connections(w: Weights, *, autapses: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The synapses of a projection as ``(post, pre, weight)`` arrays in the canonical order.

    Parameters
    ----------
    w : ndarray or SparseWeights
        Dense: every pair ``(post, pre)``, row-major (``post`` outer, ``pre`` inner).  Sparse: the
        listed synapses (already in that order).
    autapses : bool
        False for the recurrent projection: the diagonal pairs of a dense square matrix are not
        synapses and are left out (a valid sparse projection has none).

    Returns
    -------
    post, pre : ndarray of int64
    weight : ndarray of float64
    """
    if is_sparse(w):
        if autapses:
            return w.post, w.pre, w.weight
        keep = w.post != w.pre
        return w.post[keep], w.pre[keep], w.weight[keep]
    arr = np.asarray(w, dtype=float)
    n_post, n_pre = arr.shape
    post = np.repeat(np.arange(n_post, dtype=np.int64), n_pre)
    pre = np.tile(np.arange(n_pre, dtype=np.int64), n_post)
    weight = arr.reshape(-1)
    if not autapses:
        keep = post != pre
        return post[keep], pre[keep], weight[keep]
    return post, pre, weight.copy()


def n_connections(w: Weights, *, autapses: bool = True) -> int:
    """Number of synapses (see :func:`connections` for ``autapses``)."""
    if is_sparse(w):
        return w.n_connections if autapses else int(np.count_nonzero(w.post != w.pre))
    n_post, n_pre = shape_of(w)
    return n_post * n_pre - (0 if autapses else min(n_post, n_pre))


def connection_keys(w: Weights) -> np.ndarray:
    """``post * n_pre + pre`` of every synapse (ascending in the canonical order)."""
    post, pre, _ = connections(w)
    return post * np.int64(shape_of(w)[1]) + pre


def connection_index(w: Weights, post: Any, pre: Any) -> np.ndarray:
    """Positions of the pairs ``(post, pre)`` in the canonical connection order of ``w``.

    Used to put values read from a simulator (in the simulator's order) into the canonical order.

    Raises
    ------
    KeyError
        A pair is not a synapse of ``w``.
    """
    post = np.asarray(post, dtype=np.int64)
    pre = np.asarray(pre, dtype=np.int64)
    keys = connection_keys(w)
    want = post * np.int64(shape_of(w)[1]) + pre
    idx = np.searchsorted(keys, want)
    idx_c = np.minimum(idx, max(keys.size - 1, 0))
    missing = (idx >= keys.size) | (keys[idx_c] != want) if keys.size else np.ones(want.shape, bool)
    if np.any(missing):
        k = int(np.flatnonzero(np.reshape(missing, -1))[0])
        raise KeyError(f"(post {int(post.reshape(-1)[k])}, pre {int(pre.reshape(-1)[k])}) is not a synapse "
                       f"of this projection")
    return idx_c


def has_connections(w: Weights, post: Any, pre: Any) -> np.ndarray:
    """Bool per pair ``(post, pre)``: is it a synapse of ``w`` (any pair of a dense matrix is)."""
    post = np.asarray(post, dtype=np.int64)
    pre = np.asarray(pre, dtype=np.int64)
    n_post, n_pre = shape_of(w)
    inside = (post >= 0) & (post < n_post) & (pre >= 0) & (pre < n_pre)
    if not is_sparse(w):
        return inside
    keys = connection_keys(w)
    want = post * np.int64(n_pre) + pre
    idx = np.minimum(np.searchsorted(keys, want), max(keys.size - 1, 0))
    return inside & (keys[idx] == want) if keys.size else np.zeros(want.shape, bool)


def from_dense(w: Any, mask: Any = None, *, autapses: bool = True) -> SparseWeights:
    """The synapses of a dense matrix where ``mask`` is true (default: where the weight is not 0).

    Parameters
    ----------
    w : array_like
        ``(n_post, n_pre)`` weights.
    mask : array_like of bool, optional
        Which pairs are connected (a connected pair may have weight 0).
    autapses : bool
        False: the diagonal is never connected (recurrent projection).
    """
    arr = np.asarray(w, dtype=float)
    if arr.ndim != 2:
        raise ParameterError(f"from_dense: a {arr.ndim}-D array; allowed values are (n_post, n_pre) matrices")
    m = arr != 0 if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != arr.shape:
        raise ParameterError(f"from_dense: mask of shape {m.shape} for weights of shape {arr.shape}")
    if not autapses:
        m = m.copy()
        np.fill_diagonal(m, False)
    post, pre = np.nonzero(m)  # row-major: the canonical order
    return SparseWeights(arr.shape, post, pre, arr[post, pre])


def _check_dense_size(w: SparseWeights, what: str) -> None:
    if w.shape[0] * w.shape[1] > DENSE_LIMIT:
        raise ParameterError(f"{what}: a sparse projection of shape {w.shape} has {w.shape[0] * w.shape[1]} matrix "
                             f"entries, more than DENSE_LIMIT = {DENSE_LIMIT}; use its connection list instead")


def to_dense(w: Weights, *, force: bool = False) -> np.ndarray:
    """The ``(n_post, n_pre)`` float matrix (0 where there is no synapse); a copy.

    For small projections only: a sparse one with more than :data:`DENSE_LIMIT` entries raises
    a ParameterError unless ``force``.
    """
    if not is_sparse(w):
        return np.array(w, dtype=float)
    if not force:
        _check_dense_size(w, "to_dense")
    out = np.zeros(w.shape)
    out[w.post, w.pre] = w.weight
    return out


def mask_of(w: Weights, *, autapses: bool = True, force: bool = False) -> np.ndarray:
    """Bool ``(n_post, n_pre)`` matrix of the connected pairs (small projections, as :func:`to_dense`)."""
    n_post, n_pre = shape_of(w)
    if is_sparse(w):
        if not force:
            _check_dense_size(w, "mask_of")
        m = np.zeros((n_post, n_pre), dtype=bool)
        m[w.post, w.pre] = True
    else:
        m = np.ones((n_post, n_pre), dtype=bool)
    if not autapses:
        np.fill_diagonal(m, False)
    return m


def with_weights(w: Weights, weight: Any) -> Weights:
    """The same connections with new weights (a vector in the canonical order, or a matrix if dense)."""
    if is_sparse(w):
        return SparseWeights(w.shape, w.post, w.pre, np.asarray(weight, dtype=float).reshape(-1))
    return np.asarray(weight, dtype=float).reshape(shape_of(w)).copy()


def snapshot(w: Weights) -> np.ndarray:
    """What a :class:`~eprop_plugins.results.Result` stores per snapshot: the matrix, or the weight vector."""
    return np.array(w.weight) if is_sparse(w) else np.array(w, dtype=float)


def validate_structure(where: str, w: SparseWeights, shape: tuple[int, int], *, autapses: bool = True) -> None:
    """The rules of a sparse projection, each failure a ParameterError naming ``where.<field>[k]``.

    Checks: the declared shape equals ``shape``; ``post`` and ``pre`` in range; pairs strictly
    increasing in the canonical order (sorted, no duplicates); no ``post == pre`` unless
    ``autapses``; weights finite.
    """
    if tuple(w.shape) != tuple(shape):
        raise ParameterError(f"{where}.shape = {list(w.shape)}: does not match the sizes; expected "
                             f"{list(shape)} [n_post, n_pre]")
    n_post, n_pre = shape
    for name, arr, n in (("post", w.post, n_post), ("pre", w.pre, n_pre)):
        bad = np.flatnonzero((arr < 0) | (arr >= n))
        if bad.size:
            k = int(bad[0])
            raise ParameterError(f"{where}.{name}[{k}] = {int(arr[k])}: allowed range is 0 <= {name} <= {n - 1}")
    keys = w.post * np.int64(n_pre) + w.pre
    down = np.flatnonzero(np.diff(keys) <= 0)
    if down.size:
        k = int(down[0]) + 1
        what = "appears twice" if keys[k] == keys[k - 1] else "is out of order"
        raise ParameterError(
            f"{where}.post[{k}], {where}.pre[{k}] = ({int(w.post[k])}, {int(w.pre[k])}): the pair {what}; "
            f"allowed are unique pairs sorted by post, then pre (after ({int(w.post[k - 1])}, {int(w.pre[k - 1])}))")
    if not autapses:
        auto = np.flatnonzero(w.post == w.pre)
        if auto.size:
            k = int(auto[0])
            raise ParameterError(f"{where}.post[{k}] = {where}.pre[{k}] = {int(w.pre[k])}: autapses are not "
                                 f"supported; allowed are pairs with post != pre")
    bad = np.flatnonzero(~np.isfinite(w.weight))
    if bad.size:
        k = int(bad[0])
        raise ParameterError(f"{where}.weight[{k}] = {float(w.weight[k])!r}: allowed range is finite")
