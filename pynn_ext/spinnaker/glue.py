"""pyNN.spiNNaker glue: the e-prop types of :mod:`pynn_ext.standardmodels` on sPyNNaker (tables and glue only).

Imported automatically when ``pynn_ext`` and ``pyNN.spiNNaker`` are both imported (in sPyNNaker's
own environment, :mod:`pynn_ext.spinnaker.environment`).  It

* wraps ``setup``: without a sPyNNaker configuration of the user's (``~/.spynnaker.cfg``,
  ``~/.config/.spynnaker.cfg``, ``/etc/xdg/.spynnaker.cfg``) it writes a virtual-board configuration
  (``[Machine] virtual_board = True``, ``version = 5``) as ``.spynnaker.cfg`` into the working
  directory and lets sPyNNaker read it from there, never from or into ``$HOME``;
* makes ``sim.Population`` with an e-prop cell type a population of
  :class:`~pynn_ext.spinnaker.models.EpropRecurrentModel` / :class:`~pynn_ext.spinnaker.models.EpropReadoutModel`;
* makes ``sim.Projection`` with :class:`~pynn_ext.standardmodels.EpropSynapse` a projection of
  :class:`~pynn_ext.spinnaker.models.EpropSynapseDynamics` whose connection list (any of PyNN's
  connectors below, weights signed, in mV) is computed here, and with
  :class:`~pynn_ext.standardmodels.FeedbackSynapse` a :class:`FeedbackProjection`: the weights B go
  into the recurrent neurons' feedback rows and an edge on the readouts' error partition routes the
  errors e_k to them;
* computes the network constants (update interval, learning window, eligibility filter, feedback
  rows, target series) right before the first ``sim.run`` (:func:`prepare`), and after each run
  writes a mapping summary (:func:`mapping_summary`, ``eprop_mapping.json`` in sPyNNaker's run
  directory): placements, neurons per core, binaries, region sizes, error routes.

Only the original family exists on SpiNNaker (the kernel under ``pynn_ext/spinnaker/c``).  On a
virtual board nothing runs: recorded data and weights read back are empty.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyNN.spiNNaker as pynn_spinnaker
import spynnaker.pyNN as spynnaker_pynn
from pyNN.parameters import Sequence
from pyNN.random import RandomDistribution
from pyNN.standardmodels import cells as pynn_cells
from pacman.model.graphs.application import ApplicationEdge
from spynnaker.pyNN.data import SpynnakerDataView
from spynnaker.pyNN.models.neural_projections.connectors import (
    AllToAllConnector,
    ArrayConnector,
    FixedProbabilityConnector,
    FromListConnector,
    OneToOneConnector,
)
from spynnaker.pyNN.models.neuron.population_machine_vertex import PopulationMachineVertex
from spynnaker.pyNN.utilities.constants import POP_TABLE_MAX_ROW_LENGTH
from spynnaker.pyNN.models.populations import Population
from spynnaker.pyNN.models.projection import Projection as SpiNNakerProjection
from spynnaker.pyNN.models.spike_source.spike_source_array import SpikeSourceArray
from spynnaker.pyNN.models.spike_source.spike_source_poisson import SpikeSourcePoisson
from spinn_front_end_common.interface.ds import DsSqlliteDatabase
from spinn_utilities.config_holder import get_config_bool

from eprop_plugins.cache import atomic_write
from eprop_plugins.parameters import ADAPTIVE_MODELS, SYNAPSE, ParameterError
from eprop_plugins.scenario import Population as ScenarioPopulation
from eprop_plugins.scenario import Scenario

from ..standardmodels import (
    EpropCellType,
    EpropReadout,
    EpropSynapse,
    EpropSynapseType,
    READOUT_NETWORK_ROWS,
    FeedbackSynapse,
    check_projection,
    join_family,
)
from . import fixed_point as fx
from . import models
from .kernel_params import kernel_network

__all__ = ["CONFIG_NAME", "VIRTUAL_BOARD_CONFIG", "BINARIES_VARIABLE", "user_config", "write_virtual_board_config",
           "binary_directories", "setup", "run", "run_until",
           "prepare", "mapping_summary", "FeedbackProjection", "NetworkState", "MAPPING_FILE"]

logger = logging.getLogger(__name__)

#: sPyNNaker's name for a user configuration file (``$HOME``, the XDG config directories)
CONFIG_NAME = ".spynnaker.cfg"
#: the configuration the project writes when the user has none: map on a virtual SpiNN-5 board
VIRTUAL_BOARD_CONFIG = "[Machine]\nvirtual_board = True\nversion = 5\n"
#: directories (``os.pathsep``-separated) holding e-prop ``.aplx`` binaries built with the SpiNNaker toolchain
BINARIES_VARIABLE = "EPROP_SPINNAKER_BINARIES"
#: the synapse table's names (options of EpropSynapse that the kernel data uses)
SYNAPSE_NAMES = tuple(r.name for r in SYNAPSE)
#: the mapping summary written into sPyNNaker's run directory after each run
MAPPING_FILE = "eprop_mapping.json"
#: regions whose data-specification content the summary holds (hex, at most CONTENT_BYTES each): the
#: structs the host writes and the first synaptic rows
CONTENT_REGIONS = (PopulationMachineVertex.REGIONS.NEURON_PARAMS, PopulationMachineVertex.REGIONS.SYNAPSE_DYNAMICS,
                   PopulationMachineVertex.REGIONS.SYNAPTIC_MATRIX)
CONTENT_BYTES = 1 << 16


def _config_paths() -> list[Path]:
    """Where sPyNNaker 7.4 looks for a user configuration: first XDG config directory, XDG config home, ``$HOME``."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    config_dirs = (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)[0]
    return [(Path(d).expanduser() / CONFIG_NAME).resolve() for d in (config_dirs, config_home, str(Path.home()))]


def user_config() -> Path | None:
    """The user's own sPyNNaker configuration file, if there is one (not the one of the working directory)."""
    local = (Path.cwd() / CONFIG_NAME).resolve()
    return next((path for path in _config_paths() if path.is_file() and path != local), None)


def write_virtual_board_config(directory: Path | None = None) -> Path:
    """Write the virtual-board configuration as ``<directory>/.spynnaker.cfg`` (default: the working
    directory) unless a file of that name is there; return its path."""
    path = (directory or Path.cwd()) / CONFIG_NAME
    if not path.exists():
        atomic_write(path, VIRTUAL_BOARD_CONFIG)
    return path


_spynnaker_setup = spynnaker_pynn.setup
_spynnaker_run = spynnaker_pynn.run
_spynnaker_run_until = spynnaker_pynn.run_until


def setup(timestep: float | None = None, *args: Any, **kwargs: Any) -> int:
    """sPyNNaker's ``setup``, with the virtual-board configuration of the working directory when the user has none.

    sPyNNaker 7.4 reads a user configuration only from the XDG configuration directories or
    ``$HOME`` (and writes a template into ``$HOME`` when there is none); the working-directory file
    is found by pointing the first XDG configuration directory at the working directory while
    sPyNNaker loads its configuration.
    """
    STATE.reset()
    if user_config() is not None or write_virtual_board_config().resolve() in _config_paths():
        rank = _spynnaker_setup(timestep, *args, **kwargs)  # the user's (or, in $HOME itself, the written) one
    else:
        previous = os.environ.get("XDG_CONFIG_DIRS")
        os.environ["XDG_CONFIG_DIRS"] = os.pathsep.join([str(Path.cwd()), previous or "/etc/xdg"])
        try:
            rank = _spynnaker_setup(timestep, *args, **kwargs)
        finally:
            if previous is None:
                del os.environ["XDG_CONFIG_DIRS"]
            else:
                os.environ["XDG_CONFIG_DIRS"] = previous
    for directory in binary_directories():
        SpynnakerDataView.register_binary_search_path(str(directory))
    return rank


def binary_directories() -> list[Path]:
    """Where the e-prop ``.aplx`` binaries are looked for, besides sPyNNaker's own: ``$EPROP_SPINNAKER_BINARIES``
    (``os.pathsep``-separated) and the kernel's build directory ``pynn_ext/spinnaker/c/build/aplx``, if they exist."""
    given = [Path(d) for d in os.environ.get(BINARIES_VARIABLE, "").split(os.pathsep) if d]
    return [d.resolve() for d in (*given, models.C_DIRECTORY / "build" / "aplx") if d.is_dir()]


# ----------------------------------------------------------------------------------- network state

@dataclass
class NetworkState:
    """The e-prop populations and projections of the current sPyNNaker network."""

    family: str | None = None
    family_owner: str | None = None
    recurrent: list[Any] = field(default_factory=list)
    readouts: list[Any] = field(default_factory=list)
    #: (pre, post, number of connections, fan-in of each post neuron, synapse dynamics) per plastic projection
    plastic: list[tuple[Any, Any, int, np.ndarray, Any]] = field(default_factory=list)
    feedback: list[FeedbackProjection] = field(default_factory=list)
    targets: dict[int, Any] = field(default_factory=dict)
    prepared: bool = False

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


STATE = NetworkState()


def _canonical(celltype: EpropCellType, n: int) -> dict[str, Any]:
    """The cell type's PyNN parameters, scalars or per-neuron arrays (the readout's signals excluded)."""
    space = celltype.parameter_space
    space.shape = (n,)
    space.evaluate(simplify=True)
    return {name: value for name, value in space.items() if name not in ("target", "learning_window_signal")}


def _model(celltype: EpropCellType, n: int) -> Any:
    where = type(celltype).__name__
    if celltype.family != "original":
        raise ParameterError(f"{where}: family = {celltype.family!r}: SpiNNaker has the original family only "
                             "(the kernel under pynn_ext/spinnaker/c); allowed values are original")
    join_family(STATE, celltype.family, where)
    if isinstance(celltype, EpropReadout):
        model = models.EpropReadoutModel(n)
    else:
        model = models.EpropRecurrentModel(n, celltype.model in ADAPTIVE_MODELS)
    model.eprop_celltype = celltype  # the PyNN type: its canonical values and options
    model.canonical = _canonical(celltype, n)
    return model


_population_init = Population.__init__


def _population_init_eprop(self: Population, size: Any, cellclass: Any, cellparams: Any = None,
                           *args: Any, **kwargs: Any) -> None:
    if isinstance(cellclass, type) and issubclass(cellclass, EpropCellType):
        cellclass = cellclass(**(cellparams or {}))
        cellparams = None
    if not isinstance(cellclass, EpropCellType):
        _population_init(self, size, cellclass, cellparams, *args, **kwargs)
        return
    model = _model(cellclass, int(size))
    _population_init(self, size, model, None, *args, **kwargs)
    (STATE.readouts if isinstance(cellclass, EpropReadout) else STATE.recurrent).append(self)


_population_set = Population.set


def _population_set_eprop(self: Population, **parameters: Any) -> None:
    celltype = getattr(self.celltype, "eprop_celltype", None)
    if celltype is None:
        _population_set(self, **parameters)
        return
    if "target" in parameters:
        STATE.targets[id(self)] = parameters.pop("target")
    for name, value in parameters.items():
        if name not in celltype.default_parameters:
            raise ParameterError(f"{type(celltype).__name__}: {name!r} cannot be set on SpiNNaker; valid names are "
                                 f"{', '.join(sorted(celltype.default_parameters))}, target")
        self.celltype.canonical[name] = np.broadcast_to(np.asarray(value, dtype=float), (self.size,)).copy()
    STATE.prepared = False


_population_get = Population.get


def _population_get_eprop(self: Population, parameter_names: Any, gather: bool = True, simplify: bool = True) -> Any:
    """``Population.get`` of e-prop parameters: the canonical values (the structs hold the kernel's encoding)."""
    model = self.celltype
    names = [parameter_names] if isinstance(parameter_names, str) else list(parameter_names)
    if getattr(model, "eprop_celltype", None) is None or not all(n in model.canonical for n in names):
        return _population_get(self, parameter_names, gather, simplify)
    values = []
    for name in names:
        array = np.broadcast_to(np.asarray(model.canonical[name], dtype=float), (self.size,))
        values.append(float(array[0]) if simplify and np.all(array == array[0]) else array.copy())
    return values[0] if isinstance(parameter_names, str) else values


_population_record = Population.record

#: PyNN recordables of the e-prop types that the kernel does not hold: the target is the series the
#: script gave (``Population.set(target=...)``), not a state of the core
NOT_ON_THE_CORE = {"target": "the target is the series given with set(target=...); the core does not record it"}


def _population_record_eprop(self: Population, variables: Any, to_file: Any = None,
                             sampling_interval: Any = None) -> None:
    """``Population.record``: the e-prop recordables the core holds; the others with a warning saying why not."""
    if getattr(self.celltype, "eprop_celltype", None) is not None:
        names = [variables] if isinstance(variables, str) else list(variables)
        for name in (n for n in names if n in NOT_ON_THE_CORE):
            logger.warning("%s: %r is not recorded on SpiNNaker: %s", self.label, name, NOT_ON_THE_CORE[name])
        variables = [n for n in names if n not in NOT_ON_THE_CORE]
        if not variables:
            return
    _population_record(self, variables, to_file, sampling_interval)


# ----------------------------------------------------------------------------------- projections

class _Roles:
    """What :func:`pynn_ext.standardmodels.check_projection` reads of a population: the PyNN cell type and label."""

    def __init__(self, population: Population) -> None:
        celltype = population.celltype
        if isinstance(celltype, (SpikeSourceArray, SpikeSourcePoisson)):  # sPyNNaker's: PyNN's for the check
            celltype = (pynn_cells.SpikeSourceArray if isinstance(celltype, SpikeSourceArray)
                        else pynn_cells.SpikeSourcePoisson)()
        self.celltype = getattr(celltype, "eprop_celltype", celltype)
        self.label = population.label


def _pairs(connector: Any, pre: Population, post: Population) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) indices of the connections PyNN's ``connector`` makes from ``pre`` to ``post``."""
    n_pre, n_post = pre.size, post.size
    if isinstance(connector, AllToAllConnector):
        i, j = (a.ravel() for a in np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij"))
        if pre is post and not connector.allow_self_connections:
            keep = i != j
            i, j = i[keep], j[keep]
        return i, j
    if isinstance(connector, OneToOneConnector):
        n = min(n_pre, n_post)
        return np.arange(n), np.arange(n)
    if isinstance(connector, FixedProbabilityConnector):
        # drawn here, with the connector's rng (PyNN's NumpyRNG) if it has one: e-prop rows are
        # written on the host, so sPyNNaker's own (on-machine) draw does not apply
        rng = connector._FixedProbabilityConnector__rng  # noqa: SLF001 - sPyNNaker keeps it private
        uniform = (np.asarray(rng.next(n_pre * n_post, "uniform", {"low": 0.0, "high": 1.0})) if rng is not None
                   else np.random.default_rng().random(n_pre * n_post)).reshape(n_pre, n_post)
        drawn = uniform < connector.p_connect
        if pre is post and not connector._FixedProbabilityConnector__allow_self_connections:  # noqa: SLF001
            np.fill_diagonal(drawn, False)
        return np.nonzero(drawn)
    if isinstance(connector, FromListConnector):
        conn_list = np.asarray(connector.conn_list)
        return conn_list[:, 0].astype(int), conn_list[:, 1].astype(int)
    if isinstance(connector, ArrayConnector):
        return np.nonzero(np.asarray(connector._ArrayConnector__array))  # noqa: SLF001 - sPyNNaker keeps it private
    raise ParameterError(f"{type(connector).__name__}: e-prop projections on SpiNNaker accept AllToAllConnector, "
                         "OneToOneConnector, FixedProbabilityConnector, FromListConnector or ArrayConnector")


def _list_weights(connector: Any) -> np.ndarray | None:
    """The weights of a ``FromListConnector`` whose list has them (PyNN: they take precedence), else None."""
    if not isinstance(connector, FromListConnector):
        return None
    names = list(connector.column_names or ("weight", "delay"))
    conn_list = np.asarray(connector.conn_list)
    if "weight" not in names or conn_list.shape[1] <= 2 + names.index("weight"):
        return None
    return conn_list[:, 2 + names.index("weight")].astype(float)


def _weights(value: Any, i: np.ndarray, j: np.ndarray, where: str) -> np.ndarray:
    """Weights of the connections (i, j): a scalar, a [pre, post] array, one per connection or a distribution."""
    if isinstance(value, RandomDistribution):
        return np.asarray(value.next(len(i)), dtype=float)
    array = np.asarray(value.base_value if hasattr(value, "base_value") else value, dtype=float)
    if array.ndim == 0:
        return np.full(len(i), float(array))
    if array.ndim == 2:
        return array[i, j]
    if array.shape == (len(i),):
        return array
    raise ParameterError(f"{where}: weight of shape {array.shape}: allowed are a scalar, a (pre, post) array or "
                         "one value per connection")


def _synapse_settings(syntype: EpropSynapse) -> tuple[dict[str, Any], dict[str, Any]]:
    """The synapse options and the optimizer of ``syntype`` (the window's length filled in by :func:`prepare`)."""
    synapse = {**syntype.synapse_parameters("original"), "learning_window_steps": 1}
    return synapse, syntype.optimizer.complete("original")


class FeedbackProjection:
    """Feedback (learning-signal) weights B from a readout population to a recurrent one.

    On SpiNNaker B is not a synaptic matrix: each recurrent neuron keeps its row B_j. in DTCM
    (``feedback_<k>`` after its ``neuron_t``) and forms L_j = sum_k B_jk e_k from the readouts' error
    packets, which reach its cores through an edge on the partition ``models.ERROR_PARTITION``.
    """

    def __init__(self, pre: Population, post: Population, i: np.ndarray, j: np.ndarray, w: np.ndarray,
                 label: str | None) -> None:
        self.pre, self.post, self.label = pre, post, label or f"{pre.label} -> {post.label} (feedback)"
        self.matrix = np.zeros((pre.size, post.size))
        self.matrix[i, j] = w
        self.edge = ApplicationEdge(pre._vertex, post._vertex, label=self.label)  # noqa: SLF001
        SpynnakerDataView.add_edge(self.edge, models.ERROR_PARTITION)

    def get(self, attribute_names: str | list[str], format: str = "list", **_: Any) -> Any:  # noqa: A002
        """``weight`` as a (pre, post) array (``format="array"``) or a list of (i, j, B)."""
        if attribute_names not in ("weight", ["weight"]):
            raise ParameterError(f"FeedbackProjection.get: {attribute_names!r}: allowed values are weight")
        if format == "array":
            return self.matrix.copy()
        i, j = np.nonzero(self.matrix)
        return list(zip(i.tolist(), j.tolist(), self.matrix[i, j].tolist()))

    def __len__(self) -> int:
        return int(np.count_nonzero(self.matrix))


_projection_init = SpiNNakerProjection.__init__


def _projection_init_eprop(self: SpiNNakerProjection, pre_synaptic_population: Any, post_synaptic_population: Any,
                           connector: Any, synapse_type: Any = None, *args: Any, **kwargs: Any) -> None:
    if not isinstance(synapse_type, EpropSynapse):
        _projection_init(self, pre_synaptic_population, post_synaptic_population, connector, synapse_type,
                         *args, **kwargs)
        return
    pre, post = pre_synaptic_population, post_synaptic_population
    dt = SpynnakerDataView.get_simulation_time_step_ms()
    check_projection(_Roles(pre), _Roles(post), synapse_type, dt)
    i, j = _pairs(connector, pre, post)
    w = _list_weights(connector)
    if w is None:
        w = _weights(synapse_type.parameter_space["weight"], i, j, "EpropSynapse")
    synapse, optimizer = _synapse_settings(synapse_type)
    dynamics = models.EpropSynapseDynamics(synapse, optimizer, weight=0.0, delay=dt)
    conn_list = np.column_stack([i, j, w, np.full(len(i), dt)])
    _projection_init(self, pre, post, FromListConnector(conn_list), dynamics, *args, **kwargs)
    STATE.plastic.append((pre, post, len(i), np.bincount(j, minlength=post.size), dynamics))
    STATE.prepared = False


def _projection(presynaptic_population: Any, postsynaptic_population: Any, connector: Any,
                synapse_type: Any = None, *args: Any, **kwargs: Any) -> Any:
    """``sim.Projection``: e-prop feedback synapses become a :class:`FeedbackProjection`, the rest sPyNNaker's."""
    if isinstance(synapse_type, FeedbackSynapse):
        pre, post = presynaptic_population, postsynaptic_population
        check_projection(_Roles(pre), _Roles(post), synapse_type, SpynnakerDataView.get_simulation_time_step_ms())
        i, j = _pairs(connector, pre, post)
        w = _list_weights(connector)
        if w is None:
            w = _weights(synapse_type.parameter_space["weight"], i, j, "FeedbackSynapse")
        projection = FeedbackProjection(pre, post, i, j, w, kwargs.get("label"))
        STATE.feedback.append(projection)
        STATE.prepared = False
        return projection
    if isinstance(synapse_type, EpropSynapseType) and not isinstance(synapse_type, EpropSynapse):
        raise ParameterError(f"{type(synapse_type).__name__}: not an e-prop synapse type of SpiNNaker")
    return _spynnaker_projection(presynaptic_population, postsynaptic_population, connector, synapse_type,
                                 *args, **kwargs)


_spynnaker_projection = spynnaker_pynn.Projection


# ----------------------------------------------------------------------------------- prepare / run

def _uniform(values: Any, name: str, where: str) -> float:
    array = np.unique(np.asarray(values, dtype=float))
    if array.size != 1:
        raise ParameterError(f"{where}: {name} differs between readouts; on SpiNNaker (as in the reference) the "
                             "readouts of a network share their parameters")
    return float(array[0])


def _target_rows(population: Population, value: Any) -> np.ndarray:
    """The target series of each readout of ``population`` (one ``Sequence`` for all, or one per readout)."""
    series = value if isinstance(value, (list, tuple)) and value and isinstance(value[0], Sequence) else [value]
    rows = [np.asarray(s.value if isinstance(s, Sequence) else s, dtype=float) for s in series]
    if len(rows) == 1:
        rows = rows * population.size
    n = max(len(r) for r in rows)
    return np.array([np.pad(r, (0, n - len(r))) for r in rows])


def _scenario_populations(population: Population) -> list[ScenarioPopulation]:
    """The recurrent population as scenario populations: consecutive neurons with equal values form one."""
    celltype, n = population.celltype.eprop_celltype, population.size
    canonical = population.celltype.canonical
    names = sorted(canonical)
    rows = np.array([np.broadcast_to(np.asarray(canonical[k], dtype=float), (n,)) for k in names]).T
    starts = [0, *(np.nonzero(np.any(rows[1:] != rows[:-1], axis=1))[0] + 1).tolist()]
    return [ScenarioPopulation(celltype.model, b - a, {**celltype.options, **dict(zip(names, rows[a].tolist()))})
            for a, b in zip(starts, [*starts[1:], n])]


def network_scenario() -> Scenario:
    """The network's parameters as a validated scenario (weights, inputs and target zero: they are not parameters).

    Its :func:`~pynn_ext.spinnaker.kernel_params.kernel_network` is the data the structs hold, as
    for the host build of the kernel.  The update interval and learning window come from the
    readout's ``sequence`` and ``learning_window`` options, the feedback weights from the feedback
    projections, the optimizer and synapse options from the first plastic projection.
    """
    dt = SpynnakerDataView.get_simulation_time_step_ms()
    if not STATE.readouts or not STATE.recurrent:
        raise ParameterError("an e-prop network on SpiNNaker needs EpropReadout and recurrent e-prop populations")
    readout = STATE.readouts[0].celltype.eprop_celltype
    network = {"family": "original", "dt": dt, "feedback": "random",
               **{k: readout.options.get(k) for k in READOUT_NETWORK_ROWS}}
    values = {name: _uniform(np.concatenate([np.ravel(p.celltype.canonical[name]) for p in STATE.readouts]),
                             name, "EpropReadout") for name in STATE.readouts[0].celltype.canonical}
    readout_values = {**{k: v for k, v in readout.options.items() if k not in READOUT_NETWORK_ROWS}, **values}
    populations = [q for p in STATE.recurrent for q in _scenario_populations(p)]
    n_rec, n_out = sum(p.size for p in STATE.recurrent), sum(p.size for p in STATE.readouts)
    n_in = max(1, sum(pre.size for pre, _, _, _, _ in STATE.plastic if pre not in STATE.recurrent))
    steps = round(network["sequence"] / dt)
    first = STATE.plastic[0][4] if STATE.plastic else None
    return Scenario(
        name="pyNN.spiNNaker network", network=network, populations=populations, readout=readout_values,
        optimizer=first.weight_dependence.optimizer if first else {},
        synapse={k: v for k, v in (first.timing_dependence.synapse if first else {}).items() if k in SYNAPSE_NAMES},
        n_in=n_in, n_out=n_out, n_sequences=1, w_in=np.zeros((n_rec, n_in)), w_rec=np.zeros((n_rec, n_rec)),
        w_out=np.zeros((n_out, n_rec)), w_fb=_feedback_matrix(n_rec, n_out), input_spikes=[np.zeros(0, int)] * n_in,
        target=np.zeros((n_out, steps))).validated()


def _feedback_matrix(n_rec: int, n_out: int) -> np.ndarray:
    """B as ``(n_rec, n_out)`` over all recurrent and readout populations, from the feedback projections."""
    rec = {id(p): sum(q.size for q in STATE.recurrent[:k]) for k, p in enumerate(STATE.recurrent)}
    out = {id(p): sum(q.size for q in STATE.readouts[:k]) for k, p in enumerate(STATE.readouts)}
    b = np.zeros((n_rec, n_out))
    for projection in STATE.feedback:
        j0, k0 = rec[id(projection.post)], out[id(projection.pre)]
        b[j0:j0 + projection.post.size, k0:k0 + projection.pre.size] += projection.matrix.T
    return b


def prepare() -> None:
    """The kernel data of the complete network into the models' structs and the synapse dynamics, before a run.

    Also sets the neurons per core (:func:`neurons_per_core`).
    """
    if STATE.prepared or not STATE.readouts:
        return
    scenario = network_scenario()
    net = kernel_network(scenario)
    start = 0
    for population in STATE.recurrent:
        part = slice(start, start + population.size)
        _refresh(population, models.EpropRecurrentModel(population.size, population.celltype.adaptive,
                                                        net.neuron_params[part], net.w_fb[part]))
        start += population.size
    for population in STATE.readouts:
        target = STATE.targets.get(id(population))
        rows = fx.to_fx(_target_rows(population, target)) if target is not None else None
        _refresh(population, models.EpropReadoutModel(
            population.size, np.repeat(net.readout_params, population.size), rows))
    for _, _, _, _, dynamics in STATE.plastic:  # each projection's own optimizer and synapse options
        timing, weight = dynamics.timing_dependence, dynamics.weight_dependence
        own = kernel_network(replace(scenario, optimizer=weight.optimizer, synapse={
            k: v for k, v in timing.synapse.items() if k in SYNAPSE_NAMES}).validated())
        timing.records, weight.records = own.synapse_params, own.optimizer
        timing.synapse["learning_window_steps"] = own.T_L
    n_out = sum(p.size for p in STATE.readouts)
    for population in (*STATE.recurrent, *STATE.readouts):
        population._vertex.set_max_atoms_per_dimension_per_core((neurons_per_core(population, n_out),))  # noqa: SLF001
    STATE.prepared = True


def neurons_per_core(population: Population, n_out: int) -> int:
    """Neurons of an e-prop population on one core: the DTCM budget and the longest synaptic row.

    Recurrent populations: :func:`pynn_ext.spinnaker.models.neurons_per_core` with the population's
    presynaptic rows and largest fan-in.  Every population: a row (one presynaptic neuron, one core)
    holds at most as many plastic synapses as fit in sPyNNaker's largest row, so a dense projection
    limits the neurons per core to that number.
    """
    incoming = [(pre, n, fan_in, dynamics) for pre, post, n, fan_in, dynamics in STATE.plastic if post is population]
    limit = population._vertex.get_max_atoms_per_core()  # noqa: SLF001 - the user's or the model's maximum
    for _, _, _, dynamics in incoming:
        limit = min(limit, dynamics.get_max_synapses(POP_TABLE_MAX_ROW_LENGTH))
    if population in STATE.recurrent and incoming:
        n_pre = sum(pre.size for pre, _, _, _ in incoming)
        fan_in = int(max(np.sum([f for _, _, f, _ in incoming], axis=0)))
        limit = min(limit, models.neurons_per_core(n_pre, fan_in, n_out, population.celltype.adaptive))
    if limit < 1:
        raise ParameterError(f"{population.label}: no e-prop neuron of this population fits on a core (DTCM budget "
                             "of pynn_ext/spinnaker/c/synapse_dynamics_eprop_original_impl.h)")
    return int(limit)


def _refresh(population: Population, fresh: Any) -> None:
    """Give the population's model the structs and values of ``fresh`` (same role, complete network constants)."""
    model, vertex = population.celltype, population._vertex  # noqa: SLF001 - sPyNNaker keeps its vertex there
    model.impl.relayout(fresh.impl)
    for name, value in fresh.impl.values.items():
        if name in fresh.impl.state_fields:
            if name not in vertex.state_variables.keys():  # the state of a run is the kernel's, not reset here
                vertex.state_variables[name] = value
        elif name in vertex.parameters.keys():
            vertex.set_parameter_values(name, value)  # sPyNNaker's path: regenerates the data after a run
        else:
            vertex.parameters[name] = value
    model.params, model.rows = fresh.params, fresh.rows


def run(simtime: float, callbacks: Any = None) -> float:
    """sPyNNaker's ``run`` after :func:`prepare`; writes :func:`mapping_summary` into the run directory."""
    prepare()
    result = _spynnaker_run(simtime, callbacks)
    _report()
    return result


def run_until(tstop: float) -> float:
    """sPyNNaker's ``run_until`` after :func:`prepare`, with the mapping summary as :func:`run`."""
    prepare()
    result = _spynnaker_run_until(tstop)
    _report()
    return result


def _report() -> None:
    summary = mapping_summary()
    path = atomic_write(Path(SpynnakerDataView.get_run_dir_path()) / MAPPING_FILE, json.dumps(summary, indent=1))
    board = "a virtual board" if summary["virtual_board"] else "the machine"
    print(f"eprop: {len(STATE.recurrent) + len(STATE.readouts)} e-prop populations on {summary['n_cores']} cores "
          f"of {board}; mapping summary {path}", file=sys.stderr, flush=True)


def _synapses_on(vertex: Any, lo: int, n: int) -> int:
    """E-prop synapses onto neurons lo .. lo + n - 1 of ``vertex``: the traces the core advances every step."""
    return int(sum(fan_in[lo:lo + n].sum() for _, post, _, fan_in, _ in STATE.plastic
                   if post._vertex is vertex))  # noqa: SLF001


def mapping_summary() -> dict[str, Any]:
    """What the last run mapped: per e-prop core its placement, neurons, binary and region sizes.

    Returns
    -------
    dict
        ``virtual_board`` (bool), ``cores`` (list of dicts: ``population``, ``role``, ``x``, ``y``,
        ``p``, ``lo_atom``, ``n_atoms``, ``binary``, ``regions`` {name: bytes}, ``contents`` {name: hex} of
        :data:`CONTENT_REGIONS`, ``synapses``: the e-prop synapses whose traces it advances each step),
        ``struct_sizes``
        (C struct -> bytes), ``error_routes`` (readout core -> ``key``, ``mask`` and the ``cores``
        {"x,y": [p, ...]} its packets reach) and ``n_cores``.
    """
    roles = {id(p._vertex): ("readout" if p in STATE.readouts else "recurrent", p.label)  # noqa: SLF001
             for p in (*STATE.recurrent, *STATE.readouts)}
    cores = []
    with DsSqlliteDatabase(SpynnakerDataView.get_ds_database_path()) as ds:
        for placement in SpynnakerDataView.iterate_placemements():
            vertex = placement.vertex
            app = getattr(vertex, "app_vertex", None)
            if id(app) not in roles:
                continue
            sizes = ds.get_region_sizes(placement.x, placement.y, placement.p)
            regions = {r.name.lower(): sizes.get(int(r), 0) for r in PopulationMachineVertex.REGIONS}
            contents = {PopulationMachineVertex.REGIONS(number).name.lower(): bytes(content[:CONTENT_BYTES]).hex()
                        for number, _, content in ds.get_regions_content(placement.x, placement.y, placement.p)
                        if number in CONTENT_REGIONS}
            lo, n = vertex.vertex_slice.lo_atom, vertex.vertex_slice.n_atoms
            cores.append({"population": roles[id(app)][1], "role": roles[id(app)][0], "x": placement.x,
                          "y": placement.y, "p": placement.p, "lo_atom": lo, "n_atoms": n,
                          "binary": vertex.get_binary_file_name(), "regions": regions, "contents": contents,
                          "synapses": _synapses_on(app, lo, n)})
    routes: dict[str, Any] = {}
    infos = SpynnakerDataView.get_routing_infos()
    tables = SpynnakerDataView.get_uncompressed().routing_tables
    for population in STATE.readouts:
        for vertex in population._vertex.machine_vertices:  # noqa: SLF001
            info = infos.get_info_from(vertex, models.ERROR_PARTITION)
            if info is None:
                routes[vertex.label] = None
                continue
            # where the router tables send the error packets: chip -> cores
            targets = {f"{t.x},{t.y}": sorted(e.processor_ids) for t in tables for e in t.multicast_routing_entries
                       if e.key == info.key and e.processor_ids}
            routes[vertex.label] = {"key": int(info.key), "mask": int(info.mask), "cores": targets}
    struct_sizes = {name: models.struct_size(header, name)
                    for header in (models.NEURON_HEADER, models.SYNAPSE_HEADER)
                    for name in models.c_structs(header)}
    return {"virtual_board": bool(get_config_bool("Machine", "virtual_board")), "n_cores": len(cores),
            "cores": cores, "struct_sizes": struct_sizes, "error_routes": routes,
            "n_feedback_rows": {p.label: int(p.celltype.feedback.shape[1]) for p in STATE.recurrent},
            "target_steps": {p.label: int(p.celltype.target.shape[1]) for p in STATE.readouts}}


_spike_source_array_init = SpikeSourceArray.__init__


def _spike_source_array_init_sequences(self: SpikeSourceArray, spike_times: Any = None) -> None:
    """PyNN's ``Sequence`` form of ``spike_times`` (one, or one per source); sPyNNaker takes lists."""
    if isinstance(spike_times, Sequence):
        spike_times = list(spike_times.value)
    elif isinstance(spike_times, (list, tuple)) and any(isinstance(s, Sequence) for s in spike_times):
        spike_times = [list(s.value) if isinstance(s, Sequence) else s for s in spike_times]
    _spike_source_array_init(self, spike_times)


class _State:
    """``simulator.state`` as the PyNN backends have it: what :func:`pynn_ext.standardmodels.time_step` reads."""

    @property
    def dt(self) -> float:
        return SpynnakerDataView.get_simulation_time_step_ms()


class _Simulator:
    state = _State()


# ----------------------------------------------------------------------------------- hooks

SpikeSourceArray.__init__ = _spike_source_array_init_sequences  # type: ignore[method-assign]

Population.__init__ = _population_init_eprop  # type: ignore[method-assign]
Population.set = _population_set_eprop  # type: ignore[method-assign]
Population.get = _population_get_eprop  # type: ignore[method-assign]
Population.record = _population_record_eprop  # type: ignore[method-assign]
SpiNNakerProjection.__init__ = _projection_init_eprop  # type: ignore[method-assign]
for _module in (spynnaker_pynn, pynn_spinnaker):
    _module.setup = setup
    _module.run = _module.run_for = run
    _module.run_until = run_until
    _module.Projection = _projection
    _module.Sequence = Sequence  # PyNN's name, which sPyNNaker does not re-export
    _module.simulator = _Simulator()  # type: ignore[attr-defined]
