"""A scenario's weight matrices as PyNN connectors: the one translation both PyNN backends use.

A scenario projection is a dense ``[post, pre]`` matrix (every pair connected) or a
:class:`~eprop_plugins.connectivity.SparseWeights` list (only the listed synapses).  PyNN takes the
first as an ``AllToAllConnector`` with a ``[pre, post]`` weight array, the second as a
``FromListConnector`` of ``(pre, post, weight)`` rows, so that a sparse network has only its synapses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eprop_plugins import connectivity as cn

__all__ = ["block_connector"]


def _bounds(sl: slice, size: int) -> tuple[int, int]:
    start, stop, _ = sl.indices(size)
    return start, stop


def block_connector(sim: Any, w: cn.Weights, rows: slice = slice(None), cols: slice = slice(None), *,
                    autapses: bool = True) -> tuple[Any, Any] | None:
    """The connector and weight of one block of a scenario projection (None: the block has no synapse).

    Parameters
    ----------
    sim : module
        The PyNN simulator module (``pyNN.nest``, ``pyNN.brian2``).
    w : ndarray or SparseWeights
        The projection, ``[post, pre]``, weights in mV (feedback: dimensionless).
    rows, cols : slice
        The postsynaptic and presynaptic neurons of the block (PyNN indices count from their starts).
    autapses : bool
        False for a recurrent block within one population (a dense diagonal is not connected).

    Returns
    -------
    (connector, weight)
        ``weight`` is the ``[pre, post]`` array for ``AllToAllConnector`` or 0.0 when the
        ``FromListConnector`` rows carry the weights.
    """
    n_post, n_pre = cn.shape_of(w)
    r0, r1 = _bounds(rows, n_post)
    c0, c1 = _bounds(cols, n_pre)
    if not cn.is_sparse(w):
        return sim.AllToAllConnector(allow_self_connections=autapses), np.asarray(w, dtype=float)[r0:r1, c0:c1].T
    post, pre, weight = cn.connections(w, autapses=autapses)
    keep = (post >= r0) & (post < r1) & (pre >= c0) & (pre < c1)
    if not np.any(keep):
        return None
    rows_list = np.column_stack([pre[keep] - c0, post[keep] - r0, weight[keep]])
    return sim.FromListConnector(rows_list, column_names=["weight"]), 0.0
