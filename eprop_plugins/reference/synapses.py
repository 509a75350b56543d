"""The plastic synapses onto one kind of target as flat per-synapse arrays, for dense and sparse projections alike.

The reference keeps every per-synapse quantity (weight, traces, optimizer state) as a vector over
the synapses that exist, so that a sparse projection costs memory in proportion to its synapses
(a 5 000-neuron network at 10 % needs no 5 000 x 5 000 array) and an unlisted pair simply has no
entry: it never transmits, never learns and has no weight event.  A dense projection is the set
of all its pairs (without the ``w_rec`` diagonal), so both forms run the same code.

A :class:`SynapseSet` merges the projections onto one target (inputs then recurrent neurons onto
the recurrent neurons; recurrent neurons onto the readouts) on one presynaptic axis (``pre`` of an
input is its index, of a recurrent neuron ``n_in`` + its index, NEST's delivery order) and lists
the synapses sorted by ``(post, pre)``.  :meth:`SynapseSet.ordered_sum` adds the weights of the
active presynaptic neurons onto each target in ascending presynaptic order, starting from 0, as
NEST's ring buffer does; every element-wise update is the same operation on the same numbers as
on a ``[post, pre]`` matrix, so the results do not depend on the form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import connectivity as cn
from ..results import WeightEventLog

__all__ = ["Part", "SynapseSet", "hidden_synapses", "readout_synapses", "SynapseSnapshots"]


@dataclass(frozen=True)
class Part:
    """One projection inside a :class:`SynapseSet`.

    Attributes
    ----------
    name : str
        ``w_in``, ``w_rec`` or ``w_out`` (the snapshot name).
    proj : int
        Weight-event projection index (0 in, 1 rec, 2 out).
    offset : int
        First index of its presynaptic neurons on the set's presynaptic axis.
    n_pre : int
        Its number of presynaptic neurons.
    positions : ndarray of int64
        Its synapses' positions in the set, in the projection's canonical connection order.
    sparse : SparseWeights or None
        The projection if it is sparse (its snapshots are then vectors).
    """

    name: str
    proj: int
    offset: int
    n_pre: int
    positions: np.ndarray
    sparse: cn.SparseWeights | None


class SynapseSet:
    """The synapses onto ``n_post`` targets from ``n_pre`` presynaptic neurons, sorted by (post, pre).

    Parameters
    ----------
    n_post, n_pre : int
        Targets; presynaptic neurons of all parts together.
    parts : list of (name, proj, offset, weights, autapses)
        The projections (dense or sparse) and where their presynaptic neurons start.
    """

    def __init__(self, n_post: int, n_pre: int, parts: list[tuple[str, int, int, cn.Weights, bool]]) -> None:
        posts, pres, weights, sizes = [], [], [], []
        for _, _, offset, w, autapses in parts:
            post, pre, weight = cn.connections(w, autapses=autapses)
            posts.append(post)
            pres.append(pre + offset)
            weights.append(weight)
            sizes.append(post.size)
        post = np.concatenate(posts) if posts else np.zeros(0, np.int64)
        pre = np.concatenate(pres) if pres else np.zeros(0, np.int64)
        order = np.lexsort((pre, post))
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        self.n_post, self.n_pre = n_post, n_pre
        self.post, self.pre = post[order], pre[order]
        self.w0 = np.concatenate(weights)[order] if weights else np.zeros(0)
        self.size = int(order.size)
        # the synapses of each presynaptic neuron, by ascending post (CSC order)
        self.by_pre = np.argsort(self.pre, kind="stable")
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(self.pre, minlength=n_pre))]).astype(np.int64)
        self.parts: list[Part] = []
        start = 0
        for (name, proj, offset, w, _), n in zip(parts, sizes):
            self.parts.append(Part(name, proj, offset, cn.shape_of(w)[1], rank[start : start + n],
                                   w if cn.is_sparse(w) else None))
            start += n

    def of_pres(self, pres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Synapses of the presynaptic neurons ``pres``: grouped by ``pres`` in the given order, by post within.

        Returns
        -------
        idx : ndarray of int64
            Positions in the set.
        which : ndarray of int64
            For each, the index into ``pres`` of its presynaptic neuron.
        """
        pres = np.asarray(pres, dtype=np.int64)
        counts = self.indptr[pres + 1] - self.indptr[pres]
        total = int(counts.sum())
        which = np.repeat(np.arange(pres.size), counts)
        within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        return self.by_pre[np.repeat(self.indptr[pres], counts) + within], which

    def ordered_sum(self, w: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Per target, the weights ``w`` of the synapses from active presynaptic neurons, added in ascending
        presynaptic order starting from 0 (NEST's ring-buffer order; see the module docstring)."""
        idx, _ = self.of_pres(np.flatnonzero(active))
        return np.bincount(self.post[idx], weights=w[idx], minlength=self.n_post)

    def index(self, post: int, pre: int) -> int:
        """Position of the synapse ``(post, pre)`` (``pre`` on the set's presynaptic axis)."""
        lo, hi = self.indptr[pre], self.indptr[pre + 1]
        cand = self.by_pre[lo:hi]
        hit = cand[self.post[cand] == post]
        if hit.size != 1:
            raise KeyError(f"(post {post}, pre {pre}) is not a synapse")
        return int(hit[0])

    def per_post(self, values: np.ndarray) -> np.ndarray:
        """A per-target vector gathered onto the synapses."""
        return np.asarray(values)[self.post]

    def add_events(self, events: WeightEventLog, steps: np.ndarray, pres: np.ndarray, w: np.ndarray) -> None:
        """One weight event per synapse of every arrival ``(steps[k], pres[k])`` with the weights ``w``."""
        idx, which = self.of_pres(pres)
        if not idx.size:
            return
        pre = self.pre[idx]
        for part in self.parts:
            sel = (pre >= part.offset) & (pre < part.offset + part.n_pre)
            if sel.any():
                events.add(np.asarray(steps)[which[sel]], part.proj, pre[sel] - part.offset, self.post[idx[sel]],
                           w[idx[sel]])

    def dense(self, w: np.ndarray, part: int = 0) -> np.ndarray:
        """The ``[post, pre]`` matrix of one part (0 where there is no synapse); for small projections."""
        p = self.parts[part]
        out = np.zeros((self.n_post, p.n_pre))
        out[self.post[p.positions], self.pre[p.positions] - p.offset] = w[p.positions]
        return out


def hidden_synapses(sc) -> SynapseSet:
    """Input and recurrent synapses onto the recurrent neurons of a validated scenario."""
    return SynapseSet(sc.n_rec, sc.n_in + sc.n_rec, [("w_in", 0, 0, sc.w_in, True),
                                                     ("w_rec", 1, sc.n_in, sc.w_rec, False)])


def readout_synapses(sc) -> SynapseSet:
    """Synapses from the recurrent neurons onto the readouts of a validated scenario."""
    return SynapseSet(sc.n_out, sc.n_rec, [("w_out", 2, 0, sc.w_out, True)])


class SynapseSnapshots:
    """The weights at the end of every sequence (:mod:`eprop_plugins.results`): matrices of dense
    projections, vectors in the canonical order of sparse ones, and the dense feedback ``w_fb``.

    Parameters
    ----------
    n_sequences : int
        Number of snapshots.
    sets : list of SynapseSet
        The synapse sets whose parts are recorded.
    n_rec, n_out : int
        Shape of ``w_fb``.
    """

    def __init__(self, n_sequences: int, sets: list[SynapseSet], n_rec: int, n_out: int) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.connections: dict[str, np.ndarray] = {}
        for s in sets:
            for p in s.parts:
                if p.sparse is not None:
                    self.arrays[p.name] = np.zeros((n_sequences, p.positions.size))
                    self.connections[p.name] = np.stack([p.sparse.post, p.sparse.pre])
                else:
                    self.arrays[p.name] = np.zeros((n_sequences, s.n_post, p.n_pre))
        self.arrays["w_fb"] = np.zeros((n_sequences, n_rec, n_out))

    def record(self, sequence: int, sets: list[tuple[SynapseSet, np.ndarray]], w_fb: np.ndarray) -> None:
        """Store the weights in force at the end of ``sequence``: ``(set, weights of its synapses)`` pairs."""
        for s, w in sets:
            for p in s.parts:
                vals = w[p.positions]
                if p.sparse is not None:
                    self.arrays[p.name][sequence] = vals
                else:  # untouched entries (the w_rec diagonal) stay 0
                    self.arrays[p.name][sequence][s.post[p.positions], s.pre[p.positions] - p.offset] = vals
        self.arrays["w_fb"][sequence] = w_fb
