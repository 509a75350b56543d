"""sPyNNaker model classes of the PyNN e-prop types (original family), laid out as the C kernel's structs.

Imported only in sPyNNaker's own environment (:mod:`pynn_ext.spinnaker.environment`); the glue
(:mod:`pynn_ext.spinnaker.glue`) builds these classes from the abstract types of
:mod:`pynn_ext.standardmodels`, so a script written for pyNN.nest or pyNN.brian2 maps unchanged.

One source for each layout
    The struct layouts (field order, types, sizes) are read from the kernel's C headers under
    ``pynn_ext/spinnaker/c/`` (:func:`c_structs`): ``neuron_params_t``/``neuron_t`` of a recurrent
    neuron, ``readout_params_t``/``readout_t`` of a readout, ``eprop_synapse_params_t`` and
    ``eprop_optimizer_params_t`` of a population's plastic synapses, ``eprop_plastic_synapse_t`` of
    one synapse in the SDRAM row.  Their values are the integer records that
    :func:`pynn_ext.spinnaker.kernel_params.kernel_network` derives for the host build of the same
    kernel (decays, P_i I_e, 1/w, c_reg/T in the kernel's rounding), handed to sPyNNaker as exact
    dyadic numbers (:func:`struct_values`), so the data specification holds the host build's bits.

sPyNNaker classes
    :class:`EpropNeuronImpl` (an ``AbstractNeuronImpl``), :class:`EpropRecurrentModel` and
    :class:`EpropReadoutModel` (``AbstractPyNNNeuronModel``), :class:`EpropPopulationVertex` (e-prop
    rows carry s16.15 weights in mV: no ring-buffer weight scaling), and the plastic synapse:
    :class:`EpropSynapseDynamics` (``SynapseDynamicsSTDP``) composed of
    :class:`EpropTimingDependence` (the eligibility filter, ``eprop_synapse_params_t``),
    :class:`EpropWeightDependence` (the optimizer, ``eprop_optimizer_params_t``) and
    :class:`EpropSynapseStructure` (``eprop_plastic_synapse_t``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from spinn_front_end_common.interface.ds import DataSpecificationBase, DataType
from spinn_front_end_common.utilities.constants import BYTES_PER_SHORT, BYTES_PER_WORD
from spinn_utilities.classproperty import classproperty
from spinn_utilities.overrides import overrides
from spinn_utilities.ranged import RangeDictionary
from spynnaker.pyNN.data import SpynnakerDataView
from spynnaker.pyNN.extra_algorithms.splitter_components import SplitterPopulationVertexFixed
from spynnaker.pyNN.models.neuron import AbstractPyNNNeuronModel, PopulationVertex
from spynnaker.pyNN.models.neuron.implementations import AbstractNeuronImpl
from spynnaker.pyNN.models.neuron.plasticity.stdp.synapse_structure import AbstractSynapseStructure
from spynnaker.pyNN.models.neuron.plasticity.stdp.timing_dependence import AbstractTimingDependence
from spynnaker.pyNN.models.neuron.plasticity.stdp.weight_dependence import AbstractWeightDependence
from spynnaker.pyNN.models.neuron.synapse_dynamics import SynapseDynamicsSTDP
from spynnaker.pyNN.utilities.struct import Struct, StructRepeat

from eprop_plugins.parameters import ParameterError

from . import fixed_point as fx

__all__ = [
    "C_DIRECTORY", "NEURON_HEADER", "SYNAPSE_HEADER", "C_TYPES", "c_structs", "c_define", "struct_size",
    "BINARIES", "ERROR_PARTITION", "struct_values", "RECURRENT_RECORDABLES", "READOUT_RECORDABLES", "neurons_per_core",
    "EpropNeuronImpl", "EpropSplitter", "EpropPopulationVertex", "EpropRecurrentModel", "EpropReadoutModel",
    "EpropSynapseStructure", "EpropTimingDependence", "EpropWeightDependence", "EpropSynapseDynamics",
]

#: the kernel's C sources
C_DIRECTORY = Path(__file__).resolve().parent / "c"
NEURON_HEADER = C_DIRECTORY / "neuron_model_eprop_original_impl.h"
SYNAPSE_HEADER = C_DIRECTORY / "synapse_dynamics_eprop_original_impl.h"

#: C storage type of a struct field -> sPyNNaker data type (eprop_fixed.h: REAL is s16.15,
#: eprop_decay_t is u0.32, as sPyNNaker's REAL and decay_t)
C_TYPES: dict[str, DataType] = {
    "REAL": DataType.S1615, "eprop_decay_t": DataType.U032, "uint32_t": DataType.UINT32,
    "int32_t": DataType.INT32, "uint16_t": DataType.UINT16, "int16_t": DataType.INT16,
    "uint8_t": DataType.UINT8, "int8_t": DataType.INT8, "int64_t": DataType.INT64, "uint64_t": DataType.UINT64,
}

Values = Mapping[str, Any]

#: binary of a population (sPyNNaker appends the synapse dynamics' suffix before ``.aplx``)
BINARIES = {"recurrent": "eprop_original_recurrent.aplx", "readout": "eprop_original_readout.aplx"}

#: outgoing partition of a readout: its error e_k, one multicast packet with payload per step
ERROR_PARTITION = "eprop_error"

_STRUCT = re.compile(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;", re.S)
_FIELD = re.compile(r"^\s*(\w+)\s+(\w+)\s*(?:\[(\w+)\])?\s*;", re.M)


@lru_cache(maxsize=None)
def c_structs(header: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    """The structs of a kernel header: name -> ((C type, field), ...) in declaration order.

    Comments are removed first; array fields are not part of these structs (they would raise).
    """
    text = re.sub(r"/\*.*?\*/", "", header.read_text(), flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out = {}
    for match in _STRUCT.finditer(text):
        fields = []
        for ctype, name, array in _FIELD.findall(match.group(2)):
            if array:
                raise ValueError(f"{header.name}: {match.group(3)}.{name} is an array; the host writes scalars")
            if ctype not in C_TYPES:
                raise ValueError(f"{header.name}: {match.group(3)}.{name} has C type {ctype}, not one of "
                                 f"{', '.join(C_TYPES)}")
            fields.append((ctype, name))
        out[match.group(3)] = tuple(fields)
    return out


def c_define(header: Path, name: str) -> int:
    """The integer value of ``#define name <integer>[u]`` in ``header``."""
    match = re.search(rf"#define\s+{name}\s+\(?\s*(\d+)u?\s*\)?", header.read_text())
    if match is None:
        raise ValueError(f"{header.name} defines no integer {name}")
    return int(match.group(1))


def _struct(header: Path, name: str, repeat: StructRepeat) -> Struct:
    return Struct([(C_TYPES[ctype], field) for ctype, field in c_structs(header)[name]], repeat_type=repeat)


def struct_size(header: Path, name: str) -> int:
    """Size in bytes of a C struct of ``header`` with natural alignment (as the ARM and host compilers lay it out)."""
    return _struct(header, name, StructRepeat.GLOBAL).numpy_dtype.itemsize


# ----------------------------------------------------------------------------------- kernel data
# The values of the structs are the integer records of pynn_ext.spinnaker.kernel_params (the data the
# host build of the kernel gets for the same network); sPyNNaker receives them as exact dyadic
# numbers, which it encodes back to the same bits.


def _from_bits(data_type: DataType, bits: Any) -> NDArray:
    """The number whose sPyNNaker encoding as ``data_type`` is ``bits`` exactly."""
    bits = np.asarray(bits)
    if data_type is DataType.S1615:
        return bits.astype(float) / float(fx.ONE)
    if data_type is DataType.U032:
        return bits.astype(float) / 2.0 ** 32
    return bits.astype(float)


def struct_values(header: Path, name: str, records: np.ndarray | None, n: int = 1) -> dict[str, Any]:
    """sPyNNaker values of the fields of C struct ``name`` from the kernel's records (None: all zeros).

    Raises
    ------
    ValueError
        The records lack a field of the header's struct (the two layouts disagree).
    """
    out: dict[str, Any] = {}
    for data_type, field in _struct(header, name, StructRepeat.GLOBAL).fields:
        if records is None:
            out[field] = 0.0
            continue
        if field not in (records.dtype.names or ()):
            raise ValueError(f"{header.name}: {name}.{field} is missing from the kernel data "
                             f"(fields {records.dtype.names}): the kernel_params layout and the header disagree")
        out[field] = _scalar_or_array(_from_bits(data_type, records[field]))
    return out


def _scalar_or_array(value: Any) -> float | NDArray:
    """One number when every neuron has the same value (sPyNNaker keeps one range), else the per-neuron array."""
    array = np.asarray(value, dtype=float).ravel()
    if array.size == 0:
        return 0.0
    if np.all(array == array[0]):
        return float(array[0])
    return array


#: PyNN recordable -> kernel state field (recorded as s16.15)
RECURRENT_RECORDABLES = {"v": "V_membrane", "psi": "psi", "learning_signal": "learning_signal",
                         "adaptation": "adaptation", "v_th_adapt": "A_thresh"}
READOUT_RECORDABLES = {"v": "V_membrane", "readout_signal": "signal", "error": "error"}


def neurons_per_core(n_pre: int, fan_in: int, n_out: int, adaptive: bool) -> int:
    """Neurons of a recurrent population per core from the DTCM budget of the kernel header.

    N = floor((DTCM - reserved - 4 n_pre) / (runtime per neuron + sizeof(neuron_params_t) +
    sizeof(neuron_t) + 4 n_out + fan_in x trace bytes)), the formula of
    ``synapse_dynamics_eprop_original_impl.h`` (``eprop_neurons_per_core``), with every constant read
    from that header.
    """
    budget = (c_define(SYNAPSE_HEADER, "EPROP_DTCM_BYTES") - c_define(SYNAPSE_HEADER, "EPROP_DTCM_RESERVED")
              - BYTES_PER_WORD * n_pre)
    trace = c_define(SYNAPSE_HEADER, "EPROP_TRACE_BYTES_ADAPTIVE" if adaptive else "EPROP_TRACE_BYTES_LIF")
    per_neuron = (c_define(SYNAPSE_HEADER, "EPROP_DTCM_PER_NEURON_RUNTIME")
                  + struct_size(NEURON_HEADER, "neuron_params_t") + struct_size(NEURON_HEADER, "neuron_t")
                  + BYTES_PER_WORD * n_out + fan_in * trace)
    return max(budget // per_neuron, 0)


# ----------------------------------------------------------------------------------- neuron impl

class EpropNeuronImpl(AbstractNeuronImpl):
    """The whole e-prop neuron of one role (recurrent or readout), one struct list as the kernel reads it.

    Parameters
    ----------
    model_name, binary : str
        sPyNNaker model name and binary (``BINARIES``).
    structs : list of Struct
        The per-neuron structs in region order (parameters, state, and extra per-neuron rows such as
        the feedback row B_j. or the target series).
    values : dict
        C field -> value (scalar or per-neuron array); fields of the state structs are state variables.
    state_fields : set of str
        The fields that are state (initial values) rather than parameters.
    recordables : dict
        PyNN recordable -> (state field, unit).
    """

    def __init__(self, model_name: str, binary: str, structs: list[Struct], values: dict[str, Any],
                 state_fields: set[str], recordables: dict[str, tuple[str, str]]) -> None:
        self.__model_name, self.__binary = model_name, binary
        self.__structs, self.__values, self.__state = structs, values, state_fields
        self.__recordables = recordables

    @property
    @overrides(AbstractNeuronImpl.model_name)
    def model_name(self) -> str:
        return self.__model_name

    @property
    @overrides(AbstractNeuronImpl.binary_name)
    def binary_name(self) -> str:
        return self.__binary

    @property
    @overrides(AbstractNeuronImpl.structs)
    def structs(self) -> Sequence[Struct]:
        return self.__structs

    @overrides(AbstractNeuronImpl.get_global_weight_scale)
    def get_global_weight_scale(self) -> float:
        return 1.0

    @overrides(AbstractNeuronImpl.get_n_synapse_types)
    def get_n_synapse_types(self) -> int:
        return 1

    @overrides(AbstractNeuronImpl.get_synapse_id_by_target)
    def get_synapse_id_by_target(self, target: str) -> int | None:
        # one synapse type: e-prop weights are signed s16.15 values in the plastic rows
        return 0 if target in ("excitatory", "eprop") else None

    @overrides(AbstractNeuronImpl.get_synapse_targets)
    def get_synapse_targets(self) -> Sequence[str]:
        return ("excitatory",)

    @overrides(AbstractNeuronImpl.get_recordable_variables)
    def get_recordable_variables(self) -> Sequence[str]:
        return list(self.__recordables)

    @overrides(AbstractNeuronImpl.get_recordable_units)
    def get_recordable_units(self, variable: str) -> str:
        return self.__recordables[variable][1]

    @overrides(AbstractNeuronImpl.get_recordable_data_types)
    def get_recordable_data_types(self) -> Mapping[str, DataType]:
        return {name: DataType.S1615 for name in self.__recordables}

    @overrides(AbstractNeuronImpl.is_recordable)
    def is_recordable(self, variable: str) -> bool:
        return variable in self.__recordables

    @overrides(AbstractNeuronImpl.get_recordable_variable_index)
    def get_recordable_variable_index(self, variable: str) -> int:
        return list(self.__recordables).index(variable)

    @overrides(AbstractNeuronImpl.add_parameters)
    def add_parameters(self, parameters: RangeDictionary) -> None:
        for name, value in self.__values.items():
            if name not in self.__state:
                parameters[name] = value

    @overrides(AbstractNeuronImpl.add_state_variables)
    def add_state_variables(self, state_variables: RangeDictionary) -> None:
        for name, value in self.__values.items():
            if name in self.__state:
                state_variables[name] = value

    @overrides(AbstractNeuronImpl.get_units)
    def get_units(self, variable: str) -> str:
        for unit_name, (field, unit) in self.__recordables.items():
            if variable in (unit_name, field):
                return unit
        return ""

    @property
    @overrides(AbstractNeuronImpl.is_conductance_based)
    def is_conductance_based(self) -> bool:
        return False

    @property
    def values(self) -> dict[str, Any]:
        """C field -> value of every struct field."""
        return self.__values

    @property
    def state_fields(self) -> set[str]:
        """The fields that are state variables."""
        return self.__state

    def relayout(self, other: EpropNeuronImpl) -> None:
        """Take the structs and values of ``other`` (the same role with the network's constants filled in)."""
        self.__structs, self.__values, self.__state = list(other.structs), dict(other.values), set(other.state_fields)


class EpropSplitter(SplitterPopulationVertexFixed):
    """sPyNNaker's one-core-per-slice splitter; every core of a recurrent population receives the readouts'
    errors (``ERROR_PARTITION``), which are payload packets, not synaptic rows of a projection."""

    @overrides(SplitterPopulationVertexFixed.get_source_specific_in_coming_vertices)
    def get_source_specific_in_coming_vertices(self, source_vertex: Any, partition_id: str) -> list[tuple[Any, Any]]:
        if partition_id != ERROR_PARTITION:
            return super().get_source_specific_in_coming_vertices(source_vertex, partition_id)
        sources = tuple(source_vertex.splitter.get_out_going_vertices(partition_id))
        return [(target, sources) for target in self.governed_app_vertex.machine_vertices]


class EpropPopulationVertex(PopulationVertex):
    """A population of e-prop neurons: rows hold signed s16.15 weights in mV, not ring-buffer-scaled integers."""

    @overrides(PopulationVertex.get_weight_scales)
    def get_weight_scales(self, ring_buffer_shifts: Iterable[int]) -> NDArray[np.floating]:
        return np.ones(len(list(ring_buffer_shifts)))


class _EpropModel(AbstractPyNNNeuronModel):
    """Common part of the e-prop sPyNNaker models: structs from the header, values from the kernel data."""

    role = ""
    params_struct = state_struct = ""
    recordables: Mapping[str, str] = {}

    def __init__(self, n_neurons: int, params: np.ndarray | None = None,
                 rows: Mapping[str, NDArray] | None = None) -> None:
        """
        Parameters
        ----------
        n_neurons : int
            Population size.
        params : structured array, optional
            The kernel's records of the parameter struct, one per neuron
            (:func:`pynn_ext.spinnaker.kernel_params.kernel_network`); None: zeros until the network
            is complete.
        rows : mapping, optional
            Per-neuron rows after the state struct: name prefix -> s16.15 bits ``(n_neurons, k)``
            (the feedback row B_j., the target series).
        """
        self.n_neurons = n_neurons
        self.params = params
        self.rows = {name: np.asarray(bits).reshape(n_neurons, -1) for name, bits in (rows or {}).items()}
        structs = [_struct(NEURON_HEADER, self.params_struct, StructRepeat.PER_NEURON),
                   _struct(NEURON_HEADER, self.state_struct, StructRepeat.PER_NEURON)]
        values = struct_values(NEURON_HEADER, self.params_struct, params)
        # the state at the start of an interval is zero (docs/model.rst §2 step 1)
        values.update(struct_values(NEURON_HEADER, self.state_struct, None))
        state = {name for _, name in structs[1].fields}
        for prefix, bits in self.rows.items():
            if bits.shape[1]:
                structs.append(Struct([(DataType.S1615, f"{prefix}_{k}") for k in range(bits.shape[1])],
                                      StructRepeat.PER_NEURON))
                values.update({f"{prefix}_{k}": _scalar_or_array(_from_bits(DataType.S1615, bits[:, k]))
                               for k in range(bits.shape[1])})
        impl = EpropNeuronImpl(f"eprop_original_{self.role}", BINARIES[self.role], structs, values, state,
                               {name: (field, "mV") for name, field in self.recordables.items()})
        super().__init__(impl)

    @property
    def impl(self) -> EpropNeuronImpl:
        """The neuron implementation (sPyNNaker keeps it as the protected ``_model``)."""
        return self._model  # type: ignore[return-value]

    @classproperty
    def default_parameters(cls) -> dict[str, Any]:  # noqa: N805 - sPyNNaker's classproperty
        return {name: 0.0 for _, name in c_structs(NEURON_HEADER)[cls.params_struct]}

    @classproperty
    def default_initial_values(cls) -> dict[str, Any]:  # noqa: N805
        return {name: 0.0 for _, name in c_structs(NEURON_HEADER)[cls.state_struct]}

    @overrides(AbstractPyNNNeuronModel.create_vertex)
    def create_vertex(self, n_neurons: int, label: str, *, spikes_per_second: float | None = None,
                      ring_buffer_sigma: float | None = None, max_expected_summed_weight: list[float] | None = None,
                      incoming_spike_buffer_size: int | None = None, drop_late_spikes: bool | None = None,
                      splitter: Any = None, seed: int | None = None, n_colour_bits: int | None = None,
                      neurons_per_core: int | tuple[int, ...] | None = None, n_synapse_cores: int | None = None,
                      allow_delay_extensions: bool | None = None) -> PopulationVertex:
        if neurons_per_core is None:
            neurons_per_core = self.get_model_max_atoms_per_dimension_per_core()
        return EpropPopulationVertex(
            n_neurons=n_neurons, label=label, max_atoms_per_core=neurons_per_core,
            # e-prop keeps synapse and neuron state on one core: no separate synapse cores, no delay cores
            n_synapse_cores=0, allow_delay_extensions=False, spikes_per_second=spikes_per_second,
            ring_buffer_sigma=ring_buffer_sigma, max_expected_summed_weight=max_expected_summed_weight,
            incoming_spike_buffer_size=incoming_spike_buffer_size, neuron_impl=self._model, pynn_model=self,
            drop_late_spikes=drop_late_spikes or False, splitter=splitter or EpropSplitter(), seed=seed,
            n_colour_bits=n_colour_bits, extra_partitions=self.extra_partitions())

    def extra_partitions(self) -> list[str]:
        """Outgoing partitions besides the spikes."""
        return []


class EpropRecurrentModel(_EpropModel):
    """Recurrent e-prop neurons (LIF or adaptive LIF) of the original family on SpiNNaker.

    Per neuron, in region order: ``neuron_params_t``, ``neuron_t`` and the feedback row B_j. (one
    REAL per readout, ``feedback_<k>``), which the kernel keeps in DTCM to form L_j = sum_k B_jk e_k
    from the readouts' error payloads.
    """

    role = "recurrent"
    params_struct, state_struct = "neuron_params_t", "neuron_t"
    recordables = RECURRENT_RECORDABLES

    def __init__(self, n_neurons: int, adaptive: bool, params: np.ndarray | None = None,
                 feedback: NDArray | None = None) -> None:
        """``feedback``: s16.15 bits of B, ``(n_neurons, n_out)``; ``adaptive``: the model has adaptation."""
        self.adaptive = adaptive
        if not adaptive:
            self.recordables = {k: v for k, v in RECURRENT_RECORDABLES.items() if k not in ("adaptation", "v_th_adapt")}
        super().__init__(n_neurons, params, {"feedback": np.zeros((n_neurons, 0)) if feedback is None else feedback})

    @property
    def feedback(self) -> NDArray:
        """s16.15 bits of the feedback rows B, ``(n_neurons, n_out)``."""
        return self.rows["feedback"]

    @classproperty
    def absolute_max_atoms_per_core(cls) -> int:  # noqa: N805
        # the neuron index of a synapse is a uint16 (eprop_plastic_synapse_t.target)
        return 1 << 16


class EpropReadoutModel(_EpropModel):
    """Readout neurons of the original family on SpiNNaker.

    Per neuron, in region order: ``readout_params_t``, ``readout_t`` and the target series (one REAL
    per time step, ``target_<n>``: element n is the target of time step n of the run).  The
    readouts of a population send their errors e_k on the partition ``ERROR_PARTITION`` (one packet
    with payload per readout per step).
    """

    role = "readout"
    params_struct, state_struct = "readout_params_t", "readout_t"
    recordables = READOUT_RECORDABLES

    def __init__(self, n_neurons: int, params: np.ndarray | None = None, target: NDArray | None = None) -> None:
        """``target``: s16.15 bits of the target series, ``(n_neurons, n_steps)``."""
        super().__init__(n_neurons, params, {"target": np.zeros((n_neurons, 0)) if target is None else target})

    @property
    def target(self) -> NDArray:
        """s16.15 bits of the target series, ``(n_neurons, n_steps)``."""
        return self.rows["target"]

    @overrides(_EpropModel.extra_partitions)
    def extra_partitions(self) -> list[str]:
        return [ERROR_PARTITION]


# ----------------------------------------------------------------------------------- synapses

class EpropSynapseStructure(AbstractSynapseStructure):
    """Per-synapse plastic state in the SDRAM row: ``eprop_plastic_synapse_t``."""

    @overrides(AbstractSynapseStructure.get_n_half_words_per_connection)
    def get_n_half_words_per_connection(self) -> int:
        return struct_size(SYNAPSE_HEADER, "eprop_plastic_synapse_t") // BYTES_PER_SHORT

    @overrides(AbstractSynapseStructure.get_weight_half_word)
    def get_weight_half_word(self) -> int:
        # the low half-word of the s16.15 weight; EpropSynapseDynamics reads and writes the whole struct
        return _plastic_dtype().fields["weight"][1] // BYTES_PER_SHORT


def _plastic_dtype() -> np.dtype:
    """``eprop_plastic_synapse_t`` as a NumPy structured dtype (C's layout)."""
    return _struct(SYNAPSE_HEADER, "eprop_plastic_synapse_t", StructRepeat.GLOBAL).numpy_dtype


def _write_struct(spec: DataSpecificationBase, name: str, records: np.ndarray | None, missing: str) -> None:
    """Write the kernel's records of the synapse header's struct ``name`` (``missing``: the error without them)."""
    if records is None:
        raise ParameterError(missing)
    spec.write_array(_struct(SYNAPSE_HEADER, name, StructRepeat.GLOBAL).get_data(
        struct_values(SYNAPSE_HEADER, name, records)))


class _KernelSettings:
    """Settings shared by the synapses of a population, and their kernel records (set by the glue)."""

    def __init__(self, settings: Values) -> None:
        self.settings = dict(settings)
        self.records: np.ndarray | None = None

    def is_same_as(self, other: Any) -> bool:
        """sPyNNaker merges the dynamics of a population's projections: equal only with equal settings."""
        return type(other) is type(self) and other.settings == self.settings


class EpropTimingDependence(_KernelSettings, AbstractTimingDependence):
    """The eligibility filter of e-prop synapses (``eprop_synapse_params_t``): no spike-pair timing."""

    def __init__(self, synapse: Values) -> None:
        """``synapse``: ``tau_m_readout`` (ms, None: the readout's), ``average_gradient``, ``learning_window_steps``.

        :attr:`records` (the kernel's ``eprop_synapse_params_t``, which needs the readouts) is set once the
        network is complete (``pynn_ext.spinnaker.glue.prepare``).
        """
        AbstractTimingDependence.__init__(self, EpropSynapseStructure())
        _KernelSettings.__init__(self, synapse)

    @property
    def synapse(self) -> dict[str, Any]:
        """The synapse options (and the learning window's length in steps)."""
        return self.settings

    @property
    def vertex_executable_suffix(self) -> str:
        return "eprop"

    @property
    def pre_trace_n_bytes(self) -> int:
        return 0  # z-bar lives in DTCM, one per row (synapse_dynamics_eprop_original_impl.h)

    @overrides(AbstractTimingDependence.get_parameters_sdram_usage_in_bytes)
    def get_parameters_sdram_usage_in_bytes(self) -> int:
        return struct_size(SYNAPSE_HEADER, "eprop_synapse_params_t")

    @property
    def n_weight_terms(self) -> int:
        return 1

    @overrides(AbstractTimingDependence.write_parameters)
    def write_parameters(self, spec: DataSpecificationBase, global_weight_scale: float,
                         synapse_weight_scales: NDArray[np.floating]) -> None:
        _write_struct(spec, "eprop_synapse_params_t", self.records,
                      "EpropSynapse: the network has no EpropReadout, which sets the eligibility filter")

    @property
    def A_plus(self) -> float:  # noqa: N802 - sPyNNaker's name
        return 0.0

    @property
    def A_minus(self) -> float:  # noqa: N802
        return 0.0

    @overrides(AbstractTimingDependence.get_parameter_names)
    def get_parameter_names(self) -> Iterable[str]:
        return tuple(self.synapse)


class EpropWeightDependence(_KernelSettings, AbstractWeightDependence):
    """The optimizer of e-prop synapses (``eprop_optimizer_params_t``), shared by a population's synapses."""

    def __init__(self, optimizer: Values) -> None:
        """``optimizer``: the canonical optimizer dictionary (:meth:`pynn_ext.standardmodels.EpropOptimizer.complete`).

        :attr:`records` (the kernel's ``eprop_optimizer_params_t``) is set with the network's data.
        """
        _KernelSettings.__init__(self, optimizer)

    @property
    def optimizer(self) -> dict[str, Any]:
        """The canonical optimizer dictionary."""
        return self.settings

    @property
    def vertex_executable_suffix(self) -> str:
        return "adam" if self.optimizer["type"] == "adam" else "gd"

    @overrides(AbstractWeightDependence.get_parameters_sdram_usage_in_bytes)
    def get_parameters_sdram_usage_in_bytes(self, n_synapse_types: int, n_weight_terms: int) -> int:
        return struct_size(SYNAPSE_HEADER, "eprop_optimizer_params_t")

    @overrides(AbstractWeightDependence.write_parameters)
    def write_parameters(self, spec: DataSpecificationBase, global_weight_scale: float,
                         synapse_weight_scales: NDArray[np.floating], n_weight_terms: int) -> None:
        _write_struct(spec, "eprop_optimizer_params_t", self.records,
                      "EpropSynapse: the optimizer's kernel data was not derived before the data specification")

    @property
    def weight_maximum(self) -> float:
        return max(abs(self.optimizer["w_min"]), abs(self.optimizer["w_max"]))

    @overrides(AbstractWeightDependence.get_parameter_names)
    def get_parameter_names(self) -> Iterable[str]:
        return tuple(self.optimizer)


class EpropSynapseDynamics(SynapseDynamicsSTDP):
    """Plastic e-prop synapses of a projection: rows of ``eprop_plastic_synapse_t`` written on the host.

    The synapse expander on the machine has no e-prop matrix generator, so the rows are always
    generated here (:meth:`generate_on_machine` is False).  Weights arrive signed and in mV (the
    connection list of :mod:`pynn_ext.spinnaker.glue`, unscaled by :class:`EpropPopulationVertex`).
    """

    def __init__(self, synapse: Values, optimizer: Values, weight: Any = 0.0, delay: Any = None) -> None:
        super().__init__(EpropTimingDependence(synapse), EpropWeightDependence(optimizer), weight=weight,
                         delay=delay, backprop_delay=False)

    @overrides(SynapseDynamicsSTDP.generate_on_machine)
    def generate_on_machine(self) -> bool:
        return False

    @overrides(SynapseDynamicsSTDP.get_plastic_synaptic_data)
    def get_plastic_synaptic_data(self, connections: Any, connection_row_indices: NDArray, n_rows: int,
                                  n_synapse_types: int, max_n_synapses: int, max_atoms_per_core: int) -> Any:
        fp_data, _, fp_size, _ = super().get_plastic_synaptic_data(
            connections, connection_row_indices, n_rows, n_synapse_types, max_n_synapses, max_atoms_per_core)
        dtype = _plastic_dtype()
        records = np.zeros(len(connections), dtype=dtype)
        records["weight"] = fx.to_fx(np.asarray(connections["weight"], dtype=float))
        # cumulative gradient, moments and 1 - beta^0 start at 0; NEST's optimization_step at 1
        records["optimization_step"] = 1
        records["target"] = connections["target"]
        per_connection = records.view(np.uint8).reshape(len(connections), dtype.itemsize)
        rows = self.convert_per_connection_data_to_rows(connection_row_indices, n_rows, per_connection,
                                                        max_n_synapses)
        header = np.zeros(self._n_header_bytes, dtype=np.uint8)
        pp_rows = [np.concatenate((header, row)) for row in rows]
        pp_size = self.get_n_items(pp_rows, BYTES_PER_WORD)
        return fp_data, self.get_words(pp_rows), fp_size, pp_size

    @overrides(SynapseDynamicsSTDP.read_plastic_synaptic_data)
    def read_plastic_synaptic_data(self, n_synapse_types: int, pp_size: NDArray, pp_data: list[NDArray],
                                   fp_size: NDArray, fp_data: list[NDArray], max_atoms_per_core: int) -> Any:
        """Rows read back from a machine: sPyNNaker's sources, targets and delays, the s16.15 weights (mV)."""
        connections = super().read_plastic_synaptic_data(n_synapse_types, pp_size, pp_data, fp_size, fp_data,
                                                         max_atoms_per_core)
        dtype = _plastic_dtype()
        records = [np.frombuffer(row.view(np.uint8)[self._n_header_bytes:self._n_header_bytes + n * dtype.itemsize],
                                 dtype) for row, n in zip(pp_data, fp_size)]
        if records:
            connections["weight"] = fx.from_fx(np.concatenate([r["weight"] for r in records]))
        return connections

    @overrides(SynapseDynamicsSTDP.get_vertex_executable_suffix)
    def get_vertex_executable_suffix(self) -> str:
        return f"_{self.timing_dependence.vertex_executable_suffix}_{self.weight_dependence.vertex_executable_suffix}"
