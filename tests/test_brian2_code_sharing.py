"""Brian2 runtime mode: scenarios that differ only in sizes and step counts share their compiled Cython code.

Brian2 keys its Cython cache by the generated code text; :mod:`brian2_ext.network_common` keeps sizes,
step counts, the batch size and the learning window out of that text.  Each pair below has the same
:func:`~brian2_ext.network.runtime_structure_hash` but different sizes, sequence lengths and run lengths:
the code objects of both networks must load the same compiled modules (the second compiles nothing).
Real Brian2 code generation and compilation (into the project's Cython cache, which the other Brian2
tests share; the modules are named by a hash of their code).
"""

from __future__ import annotations

import gc
import re

import pytest

from validation import scenario_library as library

from brian2_ext.config import configure
from brian2_ext.network import EpropNetwork, runtime_structure_hash, structure_hash, structure_of
from brian2_ext.network_common import network_synapses
from brian2_ext.network_event import EventNetwork, event_structure_of


def _modules(sc) -> set[str]:
    """Names of the compiled Cython modules the code objects of the scenario's network run."""
    import brian2 as b2

    configure("cython")
    b2.set_device("runtime")
    cls = EventNetwork if sc.family == "event" else EpropNetwork
    model = cls(_structure(sc), sc.dt, sc.record_synapses, network_synapses(sc))
    model.net.run(0 * b2.ms, namespace={})  # generates and compiles every code object
    names = set()
    todo = list(model.net.objects)
    while todo:
        obj = todo.pop()
        todo.extend(getattr(obj, "contained_objects", []))
        codeobj = getattr(obj, "codeobj", None)
        if codeobj is not None:
            names |= {mod.__name__ for mod in codeobj.compiled_code.values() if mod is not None}
    del model
    gc.collect()
    return names


def _structure(sc):
    if sc.family == "event":
        return event_structure_of(sc, record=True, weight_trace=True)
    return structure_of(sc, record=True)


@pytest.mark.parametrize("first, second", [
    # 6 inputs, 5 neurons, 2 readouts, T = 150, 3 sequences vs. the sine task: 100/100/1, T = 1000, 5 sequences
    (lambda: library.build("orig-rec-tf-arrival"), lambda: library.build("task-sine-original")),
    # 6/7/2, T = 150 vs. evidence accumulation 40/100/2, T = 2250
    pytest.param(lambda: library.build("event-rec-adam-batch2"), lambda: library.build("task-evidence-event"),
                 marks=pytest.mark.slow),
])
def test_resized_scenario_uses_the_same_compiled_modules(first, second):
    a, b = first().validated(), second().validated()
    st_a, st_b = _structure(a), _structure(b)
    assert (st_a.n_rec, st_a.steps) != (st_b.n_rec, st_b.steps)
    # different standalone builds (sizes are compiled in there), one runtime code
    assert structure_hash(st_a, a.dt) != structure_hash(st_b, b.dt)
    assert runtime_structure_hash(st_a, a.dt, a.record_synapses) == runtime_structure_hash(st_b, b.dt, b.record_synapses)
    used = _modules(a)
    assert len(used) > 20, used
    assert _modules(b) == used, "the resized scenario needs other Cython modules"


def test_sparse_projections_use_the_compiled_modules_of_dense_ones():
    """Connections are run-time data: sparse input and recurrent projections run the dense network's modules."""
    import dataclasses

    import numpy as np

    from eprop_plugins import connectivity as cn

    dense = library.build("orig-rec-tf-arrival").validated()
    rng = np.random.RandomState(1)
    sparse = {}
    for proj in ("in", "rec"):
        w = dense.projections()[proj]
        mask = rng.rand(*w.shape) < 0.3
        for q, pre, post in dense.record_synapses:
            if q == proj:
                mask[post, pre] = True
        sparse[f"w_{proj}"] = cn.from_dense(w, mask, autapses=proj != "rec")
    sc = dataclasses.replace(dense, **sparse).validated()
    st_d, st_s = _structure(dense), _structure(sc)
    assert st_s.sparse and not st_d.sparse
    # another standalone build (the synapse counts are compiled in there), the same runtime code
    assert structure_hash(st_d, dense.dt) != structure_hash(st_s, sc.dt)
    assert runtime_structure_hash(st_d, dense.dt, dense.record_synapses) == \
        runtime_structure_hash(st_s, sc.dt, sc.record_synapses)
    assert _modules(sc) == _modules(dense)


def test_standalone_source_key_ignores_what_varies_between_processes(tmp_path):
    """Brian2 suffixes code-object and clock names ("_1") while the names are taken in the process and
    writes the clock resets in set order: the build's source key is the same regardless."""
    import brian2 as b2

    from brian2_ext import builds

    from brian2_ext.sessions import StandaloneSession

    sc = library.build("orig-rec-batch2-adam").validated()
    if StandaloneSession.active() is not None:  # its results live in the device re-initialised below
        StandaloneSession.active().discard()

    def generate(directory):
        from brian2.devices import device_module

        configure("cython", 1, standalone=True)
        device_module.all_devices["cpp_standalone"].reinit()  # a session may have built a project before
        b2.defaultclock.dt = sc.dt * b2.ms
        b2.set_device("cpp_standalone", build_on_run=False)
        try:
            m = EpropNetwork(_structure(sc), sc.dt, sc.record_synapses, network_synapses(sc))
            m.net.run(m.R * sc.dt * b2.ms, namespace={})
            b2.get_device().build(directory=str(directory), compile=False, run=False, with_output=False)
        finally:
            b2.get_device().reinit()
            b2.set_device("runtime")
        return {p.relative_to(directory).as_posix() for p in directory.rglob("*.cpp")}

    first = generate(tmp_path / "a")
    configure("cython")
    alive = EpropNetwork(_structure(sc), sc.dt, sc.record_synapses, network_synapses(sc))
    alive.net.run(0 * b2.ms, namespace={})  # its code objects take the names
    second = generate(tmp_path / "b")
    assert first != second and any(re.search(r"_codeobject_\d+\.cpp$", name) for name in second)  # suffixed names
    assert builds.source_key(tmp_path / "a") == builds.source_key(tmp_path / "b")
    del alive
    gc.collect()


_MODULE_NAMES = """
import brian2 as b2
from brian2_ext.config import configure
configure("cython")
b2.set_device("runtime")
g = b2.NeuronGroup(3, "dv/dt = -v / (10*ms) : 1", method="exact", name="spelling_probe")
net = b2.Network(g)
net.run(0 * b2.ms, namespace={})
print(sorted(m.__name__ for m in g.state_updater.codeobj.compiled_code.values() if m is not None))
"""


def test_every_spelling_of_the_interpreter_loads_the_same_compiled_modules(tmp_path):
    """Brian2 hashes ``sys.executable`` into each Cython module's name; ``eprop`` runs as ``.venv/bin/python3`` and
    ``python -m pytest`` as ``.venv/bin/python``.  Both spellings must name (and so share) the same modules."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from brian2_ext.config import canonical_executable

    exe = Path(sys.executable)
    spellings = [p for p in (exe.with_name("python"), exe.with_name("python3")) if p.exists()]
    assert len(spellings) == 2, f"a virtual environment has both python and python3: {spellings}"
    assert canonical_executable(str(spellings[1])) == canonical_executable(str(spellings[0])) == str(spellings[0])
    env = dict(os.environ, EPROP_CACHE_DIR=str(tmp_path))
    names = []
    for spelling in spellings:
        out = subprocess.run([str(spelling), "-c", _MODULE_NAMES], env=env, capture_output=True, text=True,
                             check=True, timeout=300)
        names.append(out.stdout.strip().splitlines()[-1])
    assert names[0] == names[1] and "_cython_magic_" in names[0]
    built = [p.name for p in (tmp_path / "brian2" / "cython").glob("*.so")]
    assert len(built) == 1, built  # the second process compiled nothing


def test_standalone_bookkeeping_files_are_compiled_at_O1_and_the_model_at_O3():
    """brian2_ext.config.lighten_makefile: make compiles objects.cpp, monitors and spike queues at -O1, the neuron
    and synapse code at -O3 (checked on the makefile of a real session, with ``make -n``)."""
    import subprocess

    from brian2_ext.sessions import StandaloneSession, open_session

    sc = library.build("event-rec-adam-batch2").validated()
    st = _structure(sc)
    session = open_session("standalone", st, sc.dt, sc.record_synapses, network_cls=EventNetwork,
                           synapses=network_synapses(sc))
    assert StandaloneSession.active() is session
    work = session.workdir
    for obj in work.rglob("*.o"):
        obj.unlink()  # the working directory holds only the linked binary: make would rebuild everything
    commands = subprocess.run(["make", "-n", "-C", str(work)], capture_output=True, text=True, check=True).stdout
    level = {}
    for line in commands.splitlines():
        m = re.search(r" -(O[13]) .* (\S+\.cpp) -o", line)
        if m:
            level[m.group(2)] = m.group(1)
    assert level["objects.cpp"] == level["main.cpp"] == "O1"
    assert {v for k, v in level.items() if "_mon_" in k or "push_spikes" in k} == {"O1"}
    model = [k for k in level if re.search(r"eprop_(recurrent|readout)_step|_trace_codeobject|_pre_codeobject", k)]
    assert len(model) >= 5 and {level[k] for k in model} == {"O3"}
