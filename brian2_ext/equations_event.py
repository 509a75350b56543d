"""Brian2 model strings and code blocks of event-family e-prop (NEST ``eprop_iaf*``, ``eprop_readout``, ``eprop_synapse``).

Written in the floating-point order of :mod:`eprop_plugins.reference.event` (which is NEST 3.10's).
All four recurrent models share one code path: per-neuron masks ``psc`` and ``adaptive`` (0/1,
run-time values) select the model arithmetically (``m*x + (1 - m)*y`` is exact for finite x, y).

Time: Brian2 step ``s`` is aligned step ``s - 1`` of the neurons (step 0 is the last pre-roll step,
without constant current and with a zero learning-window signal).  Schedule of Brian2 step ``s``:

==========================  ==================================================================
slot (order)                work
==========================  ==================================================================
``groups`` (0)              recurrent neurons (aligned ``s - 1``), firing-rate term
``thresholds``              inputs arriving at aligned ``s``; recurrent spikes of ``s - 1``
``synapses`` (0, 1, 2)      ``arrive``: inputs and recurrent spikes reach the recurrent neurons at
                            aligned ``s`` (owed decays, per-spike optimizer, then transmission);
                            readout synapses receive the spikes of ``s - 1``
``after_synapses`` (0)      readout (aligned ``s - 1``), error, previous error kept
``after_synapses`` (1)      learning signal (summed over readout synapses)
``after_synapses`` (2)      readout synapses: ``B = w`` (symmetric), weight copy for snapshots
``after_synapses`` (3)      hidden synapses integrate history step ``s - 1``, readout synapses
                            history step ``s - 2`` (per-step optimizer)
==========================  ==================================================================

Then every ``arrive(n)`` sees the integrations up to ``n - 2`` and none later, as in the
reference; NEST's optimizer index is ``t_in_timesteps + 2`` per step and ``t_in_timesteps + 1`` per
spike, for both kinds of target.
"""

from __future__ import annotations

from dataclasses import dataclass

from .equations import OPTIMIZER_CONSTANTS, feedback_apart, psi_expression, surrogate_selection
from .network_common import declare_numbers, number

__all__ = ["EventStructure", "recurrent_model", "recurrent_step", "readout_model", "readout_step",
           "hidden_synapse_model", "out_synapse_model", "arrive_code", "optimizer_call", "window_step",
           "hidden_integrate", "out_integrate", "snapshot_step", "NUMBERS"]

#: run-time numbers (:data:`brian2_ext.network_common.RUN_TIME_NUMBERS`) each object's code reads in
#: runtime mode (``rt=True``); cpp_standalone code spells them as literals
NUMBERS = {
    "recurrent": ("n_N", "dt_ms"),
    "hidden_synapse": ("n_B", "batch_f", "n_T", "n_T1"),
    "out_synapse": ("n_B", "batch_f"),
}


@dataclass(frozen=True)
class EventStructure:
    """What the generated event-family code depends on (everything else is a run-time value).

    One compiled standalone binary per structure; in runtime mode the sizes, ``steps``,
    ``sequences`` and ``batch`` are run-time values too (:func:`brian2_ext.network.runtime_structure`).
    """

    n_in: int
    n_rec: int
    n_out: int
    steps: int  # T, steps per sequence (weight snapshots)
    sequences: int  # the run length is compiled into standalone binaries
    batch: int
    optimizer: str
    each_step: bool  # optimize_each_step
    surrogates: tuple[str, ...]
    symmetric_feedback: bool
    record: bool  # per-step traces (False: readout signal only)
    weight_trace: bool  # every weight at every step (weight events)
    dt: float = 1.0
    adaptive: bool = True  # some neuron adapts (False: no epsilon trace, exact since beta = 0 and eps finite)
    #: (projection, synapses) of each sparse projection: no grid loop, the count compiled into standalone code
    sparse: tuple[tuple[str, int], ...] = ()


def recurrent_model(st: EventStructure, rt: bool = False) -> str:
    """State and constants of the recurrent neurons (``rt``: runtime mode, numbers as shared constants)."""
    sel = surrogate_selection(st.surrogates)
    return """
        v : 1          # membrane potential relative to v_rest (mV)
        r : integer    # refractory steps left
        z : 1          # spike of this step (0/1)
        a : 1          # adaptation
        thr : 1        # adaptive threshold relative to v_rest (mV)
        psi : 1        # surrogate gradient (1/mV)
        syn : 1        # weighted spike arrivals of this step (mV)
        f_av : 1       # firing-rate average (spikes/ms)
        fr : 1         # firing-rate regularisation term of this step
        L : 1          # learning signal (mV)
        alpha : 1 (constant)
        p_i : 1 (constant)      # mV per pA
        i_e : 1 (constant)      # pA
        v_th : 1 (constant)
        v_min : 1 (constant)
        v_max : 1 (constant)
        v_reset : 1 (constant)
        n_ref : integer (constant)
        rho : 1 (constant)
        beta : 1 (constant)
        psc : integer (constant)       # 1: eprop_iaf_psc_delta(_adapt)
        adaptive : integer (constant)  # 1: adaptive model
        h : 1 (constant)
        sg_w : 1 (constant)
        c_reg : 1 (constant)
        f_target : 1 (constant)  # spikes/ms
        kappa : 1 (constant)
        kappa_reg : 1 (constant)
        one_m_kappa_reg : 1 (constant)
        cutoff : integer (constant)   # ISI trace cutoff in steps
        """ + OPTIMIZER_CONSTANTS + sel + declare_numbers(rt, *NUMBERS["recurrent"])


def recurrent_step(st: EventStructure, rt: bool = False) -> str:
    """One step of the four recurrent models (reference ``neuron_step``) and the firing-rate term."""
    dt = number(rt, "dt_ms", repr(st.dt))
    return f"""
        on = int(t_in_timesteps > 0)
        r_dec = r - int(r > 0)
        nonref = int(r == 0)
        i_term = (p_i*i_e)*on
        v_iaf = clip((i_term + syn) + alpha*v, v_min, v_max)
        v_psc = clip((i_term + alpha*v) + syn, v_min, v_max)
        a_iaf = rho*a + z
        a_psc = nonref*a_iaf + (1 - nonref)*a
        v = psc*(nonref*v_psc + (1 - nonref)*v) + (1 - psc)*v_iaf
        a = adaptive*(psc*a_psc + (1 - psc)*a_iaf)
        hold = psc*(1 - nonref)
        thr = adaptive*(hold*thr + (1 - hold)*(v_th + beta*a)) + (1 - adaptive)*v_th
        dist = v - thr
        psi = ({psi_expression(st.surrogates)})*int(r_dec == 0)
        spk = int(v >= thr)*(psc + (1 - psc)*int(r_dec == 0))
        v = spk*(psc*v_reset + (1 - psc)*(v - v_th)) + (1 - spk)*v
        r = spk*n_ref + (1 - spk)*r_dec
        z = 1.0*spk
        syn = 0.0
        f_av = kappa_reg*f_av + one_m_kappa_reg*z/{dt}
        fr = c_reg*(f_av - f_target*{dt})
        """


def readout_model(st: EventStructure) -> str:
    return """
        y : 1          # readout potential relative to v_rest (mV)
        syn_out : 1
        sig : 1        # readout signal y + v_rest
        err : 1        # error of this step
        errp : 1       # error of the previous step
        kappa_out : 1 (constant)
        p_i_out : 1 (constant)   # mV per pA
        i_e_out : 1 (constant)   # pA
        v_rest_out : 1 (constant)
        v_min_out : 1 (constant)
        v_max_out : 1 (constant)
        cutoff : integer (constant)
        """ + OPTIMIZER_CONSTANTS


def readout_step() -> str:
    """Readout potential, signal and error with the learning-window factor (TimedArrays ``target``, ``lam``)."""
    return """
        on = int(t_in_timesteps > 0)
        errp = err
        y = clip(((p_i_out*i_e_out)*on + syn_out) + kappa_out*y, v_min_out, v_max_out)
        syn_out = 0.0
        sig = y + v_rest_out
        err = (sig - target(t, i))*lam(t)
        """


def _optimizer_state(st: EventStructure) -> str:
    adam = """
        m1 : 1
        m2 : 1
        b1p : 1
        b2p : 1
        """ if st.optimizer == "adam" else ""
    return """
        cum : 1               # accumulated gradient (NEST 'cumulative')
        ostep : integer       # NEST 'optimization_step'
        """ + adam


def _window_state() -> str:
    return """
        w : 1
        opened : integer      # the presynaptic neuron has spiked
        zbar : 1
        elig : 1              # eligibility of the step just integrated (0 if none)
        grad : 1              # summed gradient of the window (optimize_each_step False)
        zpb : 1               # NEST z_previous_buffer
        zcb : 1               # NEST z_current_buffer
        rem : integer         # steps left before the ISI cutoff
        dec : integer         # decay steps owed after the cutoff
        """


def hidden_synapse_model(st: EventStructure, rt: bool = False) -> str:
    """Input and recurrent synapses: history window, traces, optimizer state (weight copy if recorded)."""
    return _window_state() + """
        ebar : 1
        ebar_reg : 1
        """ + ("eps : 1\n" if st.adaptive else "") + _optimizer_state(st) + ("wsnap : 1\n" if st.record else "") \
        + declare_numbers(rt, *NUMBERS["hidden_synapse"])


def out_synapse_model(st: EventStructure, rt: bool = False) -> str:
    """Recurrent -> readout synapses; they carry the feedback weight B and sum the learning signal
    (unless the feedback is a projection of its own, :func:`brian2_ext.equations.feedback_apart`)."""
    feedback = "" if feedback_apart(st) else """
        B : 1
        L_pre = B*err_post : 1 (summed)
        """
    return _window_state() + feedback + _optimizer_state(st) + declare_numbers(rt, *NUMBERS["out_synapse"])


def optimizer_call(st: EventStructure, idx: str, grad: str, mask: str, rt: bool = False) -> str:
    """NEST ``optimized_weight(idx, grad, w)`` where ``mask`` (0/1) calls it; nothing changes elsewhere."""
    lines = [
        f"oc = {mask}",
        f"cum = cum + oc*({grad})",
        f"cur = 1 + ({idx})//{number(rt, 'n_B', st.batch)}",
        "due = oc*int(ostep < cur)",
        f"cumd = cum/{number(rt, 'batch_f', repr(float(st.batch)))}",
    ]
    if st.optimizer == "gradient_descent":
        lines.append("w = due*clip(w - eta_post*cumd, w_min_post, w_max_post) + (1 - due)*w")
    else:
        lines += [
            "nk = due*(cur - ostep)",
            "w_ad = adam_w(w, cumd, m1, m2, b1p, b2p, nk, eta_post, beta_1_post, beta_2_post, epsilon_post)",
            "m1 = adam_m(m1, cumd, beta_1_post, nk)",
            "m2 = adam_v(m2, cumd, beta_2_post, nk)",
            "b1p = mulk(b1p, beta_1_post, nk)",
            "b2p = mulk(b2p, beta_2_post, nk)",
            "w = due*clip(w_ad, w_min_post, w_max_post) + (1 - due)*w",
        ]
    lines += ["cum = (1 - due)*cum", "ostep = ostep + due*(cur - ostep)"]
    return "\n".join(lines) + "\n"


def arrive_code(st: EventStructure, hidden: bool, transmit: str, rt: bool = False) -> str:
    """``on_pre``: a presynaptic spike arrives (reference ``_SynapseBank.arrive``), then transmission."""
    lines = [f"zbar = zbar*ipow({'alpha_post' if hidden else 'kappa_out_post'}, dec)"]
    if hidden:
        lines += ["ebar = ebar*ipow(kappa_post, dec)", "ebar_reg = ebar_reg*ipow(kappa_reg_post, dec)"]
        if st.adaptive:
            lines.append("eps = eps*ipow(rho_post, dec)")
    lines.append("dec = 0")
    code = "\n".join(lines) + "\n"
    if not st.each_step:
        code += optimizer_call(st, "t_in_timesteps + 1", "grad", "opened", rt)
    code += f"""rem = cutoff_post
grad = 0.0
zcb = 1.0
opened = 1
{transmit}
"""
    return code


def window_step(integrate: str) -> str:
    """The ISI-cutoff window and NEST's spike buffers around one history step's ``integrate`` code.

    ``c`` is 1 where the step is integrated (the presynaptic neuron has spiked and the cutoff has
    not passed), ``zcur`` the arrival of the step (``z_previous_buffer``), ``dec`` counts the steps owed
    as decay (docs/model.rst §3).
    """
    return f"""
        c = opened*int(rem > 0)
        dec = dec + opened*int(rem == 0)
        zcur = zpb
        zpb = c*zcb + (1 - c)*zpb
        zcb = (1 - c)*zcb
        {integrate}
        rem = rem - c
        """


def hidden_integrate(st: EventStructure, rt: bool = False) -> str:
    """History step ``t_in_timesteps - 1`` of the input and recurrent synapses (reference ``integrate``)."""
    # without adaptive neurons beta = 0 and eps stays finite: zbar_n - 0*eps == zbar_n (zbar_n >= +0)
    eps = """e_n = psi_post*(zbar_n - beta_post*eps)
        eps = c*(rho_post*eps + e_n) + (1 - c)*eps""" if st.adaptive else "e_n = psi_post*zbar_n"
    body = f"""zbar_n = alpha_post*zbar + zcur
        {eps}
        ebar = c*(kappa_post*ebar + e_n) + (1 - c)*ebar
        ebar_reg = c*(kappa_reg_post*ebar_reg + one_m_kappa_reg_post*e_n) + (1 - c)*ebar_reg
        inc = L_post*ebar + fr_post*ebar_reg
        zbar = c*zbar_n + (1 - c)*zbar
        elig = c*e_n"""
    code = window_step(body)
    if st.each_step:
        return code + optimizer_call(st, "t_in_timesteps + 2", "inc", "c", rt)
    return code + "grad = grad + c*inc\n"


def out_integrate(st: EventStructure, rt: bool = False) -> str:
    """History step ``t_in_timesteps - 2`` of the readout synapses (the readout keeps that error in ``errp``)."""
    body = """zbar_n = kappa_out_post*zbar + zcur
        inc = errp_post*zbar_n
        zbar = c*zbar_n + (1 - c)*zbar
        elig = c*inc"""
    code = window_step(body)
    if st.each_step:
        return code + optimizer_call(st, "t_in_timesteps + 2", "inc", "c", rt)
    return code + "grad = grad + c*inc\n"


def snapshot_step(st: EventStructure, rt: bool = False) -> str:
    """Copy of the hidden weights at the last step of each sequence (weight snapshots)."""
    T, T1 = number(rt, "n_T", st.steps), number(rt, "n_T1", st.steps - 1)
    return f"k_snap = int(t_in_timesteps % {T} == {T1})\nwsnap = k_snap*w + (1 - k_snap)*wsnap"
