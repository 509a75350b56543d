"""cpp_standalone code objects that loop over all-to-all synapses as a (pre, post) grid.

Brian2 runs a synaptic ``run_regularly`` as one flat loop over synapse indices and reads the pre-
and postsynaptic indices from arrays, so every access to a ``_pre``/``_post`` variable is an
indexed (gather) load and GCC keeps the loop scalar.  The e-prop synapses are created pre-major
(:class:`brian2_ext.network_common.AllToAllNetwork`: synapse ``pre * n_post + post``, the recurrent ones
without the diagonal), so the same loop can be written as a loop over presynaptic neurons and an
inner loop over contiguous postsynaptic neurons: ``_post`` variables and synaptic variables are
then contiguous, ``_pre`` variables loop-invariant, and the inner loop vectorises.

Only the loop changes: the per-synapse code is Brian2's generated code of the same abstract code,
each synapse runs the same operations in the same order (no cross-synapse sums), so the results are
bit-identical to the flat loop.  The binary checks the synapse order once, on its first call.
"""

from __future__ import annotations

import re

from jinja2 import ChoiceLoader, DictLoader

__all__ = ["grid_codeobject_class", "split_vector_code"]

#: ``stateupdate`` template (used by ``run_regularly``) with the grid loop; the rest is Brian2's
GRID_TEMPLATE = """{# USES_VARIABLES { N, _synaptic_pre, _synaptic_post } #}
{# ALLOWS_SCALAR_WRITE #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    //// MAIN CODE ////////////
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{scalar_code|autoindent}}

    const int _N = {{constant_or_scalar('N', variables['N'])}};
    // e-prop grid loop: synapse pre*{{eprop_stride}} + (post, without post == pre if diagonal-free)
    const int _n_pre = {{eprop_grid[0]}};
    const int _n_post = {{eprop_grid[1]}};
    const bool _no_diagonal = {{'true' if eprop_grid[2] else 'false'}};
    static bool _order_checked = false;
    if (!_order_checked)
    {
        const int32_t* _spre = {{_synaptic_pre}};
        const int32_t* _spost = {{_synaptic_post}};
        int _k = 0;
        bool _ok = _N == _n_pre*{{eprop_stride}};
        for (int _i = 0; _ok && _i < _n_pre; _i++)
            for (int _j = 0; _j < _n_post; _j++)
            {
                if (_no_diagonal && _j == _i) continue;
                if (_spre[_k] != _i || _spost[_k] != _j) { _ok = false; break; }
                _k++;
            }
        if (!_ok)
        {
            std::cerr << "{{codeobj_name}}: synapses are not in the pre-major all-to-all order of the grid loop" << std::endl;
            exit(3);
        }
        _order_checked = true;
    }
    {% set _split = eprop_split(vector_code) %}
    for (int _presynaptic_idx = 0; _presynaptic_idx < _n_pre; _presynaptic_idx++)
    {
        {{_split[0]|autoindent}}
        const int _row = _presynaptic_idx*{{eprop_stride}};
        // postsynaptic neurons below the diagonal (all of them without a diagonal gap)
        const int _end = _no_diagonal ? _presynaptic_idx : _n_post;
        for (int _postsynaptic_idx = 0; _postsynaptic_idx < _end; _postsynaptic_idx++)
        {
            const int _idx = _row + _postsynaptic_idx;
            // vector code
            {{_split[1]|autoindent}}
        }
        if (_no_diagonal)
        {
            for (int _postsynaptic_idx = _presynaptic_idx + 1; _postsynaptic_idx < _n_post; _postsynaptic_idx++)
            {
                const int _idx = _row + _postsynaptic_idx - 1;
                // vector code
                {{_split[1]|autoindent}}
            }
        }
    }
{% endblock %}
"""

_INDEX_LOAD = re.compile(r"^\s*const\s+\w+\s+_(pre|post)synaptic_idx\s*=\s*[^;]*\[_idx\];\s*$", re.M)


_PRE_LOAD = re.compile(r"^\s*const\s+\w+\s+\w+\s*=\s*(_ptr_array_\w+)\[_presynaptic_idx\];\s*$", re.M)


def split_vector_code(vector_code: str | list[str]) -> tuple[str, str]:
    """Brian2's per-synapse vector code split for the grid loop.

    Returns
    -------
    pre_loads : str
        The loads of presynaptic variables (``const T x_pre = array[_presynaptic_idx];``), hoisted
        out of the inner loop: GCC does not vectorise a loop with these invariant loads in it.  Only
        when the code never writes to those arrays (then the hoisted load reads the same value).
    body : str
        The rest, without the loads of the pre/post indices (the loop provides them).
    """
    text = vector_code if isinstance(vector_code, str) else "\n".join(vector_code)
    text = _INDEX_LOAD.sub("", text)
    loads = [m for m in _PRE_LOAD.finditer(text)]
    written = {m.group(1) for m in loads if re.search(re.escape(m.group(1)) + r"\[[^]]*\]\s*=[^=]", text)}
    if written:
        return "", text
    return "\n".join(m.group(0).strip() for m in loads), _PRE_LOAD.sub("", text)


def grid_codeobject_class(n_pre: int, n_post: int, no_diagonal: bool):
    """A cpp_standalone code-object class whose ``run_regularly`` loops over the synapse grid.

    Parameters
    ----------
    n_pre, n_post : int
        Sizes of the pre- and postsynaptic groups.
    no_diagonal : bool
        The synapses ``pre == post`` do not exist (recurrent synapses without autapses).
    """
    from brian2.codegen.templates import Templater
    from brian2.devices.cpp_standalone.codeobject import CPPStandaloneCodeObject

    base = CPPStandaloneCodeObject.templater
    env_globals = dict(base.env_globals, eprop_grid=(int(n_pre), int(n_post), bool(no_diagonal)),
                       eprop_stride=int(n_post) - int(bool(no_diagonal)), eprop_split=split_vector_code)
    templater = Templater(base.package_names, base.extension, env_globals=env_globals,
                          templates_dir=base.templates_dir)
    templater.env.loader = ChoiceLoader([DictLoader({"stateupdate.cpp": GRID_TEMPLATE}), templater.env.loader])
    name = f"EpropGridCodeObject_{n_pre}x{n_post}{'_nodiag' if no_diagonal else ''}"
    return type(name, (CPPStandaloneCodeObject,), {"templater": templater})
