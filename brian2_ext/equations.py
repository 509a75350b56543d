"""Brian2 model strings and code blocks of original-family e-prop, one fragment per concept.

Every block is discrete-time code (``run_regularly`` or ``on_pre``), written in the floating-point
order of the NumPy reference (:mod:`eprop_plugins.reference.original`), because a 1e-16 difference in
the voltage update can flip a spike (docs/model.rst §8).  Variables are dimensionless numbers in
the reference's units (mV, ms, 1/mV): converting to SI volts would change the last bits of every
weight.  The user-facing API (:mod:`brian2_ext.attach`) converts Brian2 quantities once.

Schedule of one time step ``n`` (Brian2 step ``n`` of a run = aligned step ``n`` of the iteration):

==============================  =====================================================================
slot (order)                    work
==============================  =====================================================================
``start`` (-1), every B·T        loss monitor (losses-only runs), before the accumulators restart
``start`` (0, 1), every T       interval block: firing-rate term, gradient of the finished interval,
                                optimizer (due every ``batch`` intervals), reset of neurons and traces
``groups`` (0)                  input arrivals of step n (``input_step``); recurrent neuron update
                                (``recurrent_step``), which keeps the previous step's spikes in ``zp``
``thresholds``                  recurrent spikes of step n; inputs that arrive at n + 1
``synapses`` (0, 1, 2)          in/rec spikes accumulate for step n + 1; rec → readout arrive now
``after_synapses`` (0..5)       readout, softmax norm, error, learning signal, eligibility traces
                                (z̄ takes the arrivals of step n: ``zp`` of the presynaptic group)
==============================  =====================================================================

A whole scenario is one run of ``n_sequences * T + 1`` steps: the optimizer of the last interval
acts in the interval block of the extra step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .network_common import declare_numbers, number

__all__ = [
    "Structure",
    "recurrent_model",
    "recurrent_step",
    "recurrent_interval",
    "readout_model",
    "readout_step",
    "readout_signal",
    "hidden_synapse_model",
    "out_synapse_model",
    "input_step",
    "input_model",
    "readout_interval",
    "hidden_reset",
    "optimizer_state",
    "eligibility_step",
    "out_trace_step",
    "optimizer_block",
    "SURROGATE_CODE",
    "NUMBERS",
    "surrogate_selection",
    "psi_expression",
    "feedback_apart",
    "FEEDBACK_MODEL",
]

#: run-time numbers (:data:`brian2_ext.network_common.RUN_TIME_NUMBERS`) each object's code reads in
#: runtime mode (``rt=True``); cpp_standalone code spells them as literals
NUMBERS = {
    "input": ("n_T", "n_T1"),
    "recurrent": ("n_T", "dt_ms"),
    "readout": ("n_T", "n_skip", "n_BT"),
    "synapse": ("n_BT_s", "n_avg", "batch_m1"),
}


@dataclass(frozen=True)
class Structure:
    """What the generated code depends on (everything else is a run-time value).

    Two scenarios with the same structure share one compiled standalone binary.  In runtime mode
    the sizes, ``steps``, ``window``, ``batch``, ``sequences`` and ``average_gradient`` are run-time
    values too (:func:`brian2_ext.network.runtime_structure`): the Cython modules serve every
    structure that differs only in those.
    """

    n_in: int
    n_rec: int
    n_out: int
    steps: int  # T, steps per sequence (= update interval)
    window: int  # T_L, learning-window steps
    batch: int  # sequences per optimizer update (= per iteration and per run)
    loss: str
    optimizer: str
    average_gradient: bool
    surrogates: tuple[str, ...]
    symmetric_feedback: bool
    record: bool  # per-step state monitors and weight snapshots (False: losses only)
    adaptive: bool = True  # some neuron adapts (False: no epsilon trace, exact since beta = rho = 0)
    sequences: int = 0  # sequences of one run (standalone: the run length is compiled in)
    shared_zbar: bool = False  # all recurrent neurons share alpha and zeta: z-bar kept per presynaptic neuron
    #: (projection, synapses) of each sparse projection: no grid loop, the count compiled into standalone code
    sparse: tuple[tuple[str, int], ...] = ()


#: surrogate gradient psi with dist = v - threshold (docs/model.rst §1), same operation order as reference.common
SURROGATE_CODE = {
    "piecewise_linear": "h*clip(1.0 - abs(dist)/sg_w, 0.0, 1.0)",
    "exponential": "h*exp(-abs(dist)/sg_w)",
    "fast_sigmoid_derivative": "h*(1.0 + abs(dist)/sg_w)**-2.0",
    "arctan_derivative": "h/(1.0 + (dist/sg_w)**2.0)",
}


def surrogate_selection(surrogates: tuple[str, ...]) -> str:
    """Model lines of the per-neuron 0/1 flags ``sg_<name>`` (only with more than one surrogate in use)."""
    return "".join(f"sg_{name} : 1 (constant)\n" for name in surrogates) if len(surrogates) > 1 else ""


def psi_expression(surrogates: tuple[str, ...]) -> str:
    """The surrogate gradient of the functions in use, selected per neuron by the ``sg_<name>`` flags."""
    if len(surrogates) == 1:
        return SURROGATE_CODE[surrogates[0]]
    # exact: 1*x + 0*y + ... == x for finite y
    return " + ".join(f"sg_{name}*({SURROGATE_CODE[name]})" for name in surrogates)


def recurrent_model(st: Structure, rt: bool = False) -> str:
    """State and per-neuron constants of the recurrent population (original family).

    ``rt``: runtime mode, the structure's numbers are shared constants (:data:`NUMBERS`).
    """
    sel = surrogate_selection(st.surrogates)
    return (
        """
        v : 1          # membrane potential relative to v_rest (mV)
        r : integer    # refractory steps left
        z : 1          # spike of this step (0/1)
        zp : 1         # spike of the previous step (0/1): arrives at the other neurons now
        a : 1          # adaptation
        thr : 1        # effective threshold relative to v_rest (mV)
        psi : 1        # surrogate gradient (1/mV)
        syn : 1        # weighted spike arrivals of this step (mV, before the zeta factor)
        nspk : 1       # spikes in the current interval
        fr : 1         # firing-rate regularisation term of the last interval
        L : 1          # learning signal (mV), summed over readouts
        alpha : 1 (constant)
        p_i : 1 (constant)      # tau_m/cm (1 - alpha), mV/nA
        i_e : 1 (constant)      # nA
        zeta : 1 (constant)
        v_th : 1 (constant)
        v_min : 1 (constant)
        v_max : 1 (constant)    # +inf: only for clip()
        n_ref : integer (constant)
        rho : 1 (constant)
        beta : 1 (constant)
        h : 1 (constant)
        sg_w : 1 (constant)
        c_reg : 1 (constant)
        f_target : 1 (constant)  # spikes/ms
        kappa : 1 (shared, constant)        # e-bar filter of the synapses (synapse parameter)
        one_m_kappa : 1 (shared, constant)  # 1 - kappa
        """
        + OPTIMIZER_CONSTANTS
        + sel
        + (ZTR_MODEL if st.shared_zbar else "")
        + declare_numbers(rt, *NUMBERS["recurrent"])
    )


#: presynaptic z-bar kept once per presynaptic neuron (exact when all targets share alpha and zeta)
ZTR_MODEL = """
        ztr : 1                    # z-bar of this neuron's outgoing hidden synapses
        alpha_s : 1 (shared, constant)  # alpha of the (all equal) recurrent targets
        zeta_s : 1 (shared, constant)   # zeta of the (all equal) recurrent targets
        """


def recurrent_step(st: Structure) -> str:
    """One step of the recurrent neurons (docs/model.rst §2, steps 2-5), reference operation order."""
    ztr = "ztr = alpha_s*ztr + zeta_s*zp\n" if st.shared_zbar else ""
    return f"""
        zp = z
        {ztr}r = r - int(r > 0)
        v = (p_i*i_e + zeta*syn) + alpha*v
        v = v - v_th*z
        v = clip(v, v_min, v_max)
        a = rho*a + z
        thr = v_th + beta*a
        dist = v - thr
        psi = ({psi_expression(st.surrogates)})*int(r == 0)
        z = int(v >= thr and r == 0)
        r = r + int(z > 0.5)*n_ref
        nspk = nspk + z
        syn = 0.0
        """


def recurrent_interval(st: Structure, dt: float, rt: bool = False) -> str:
    """Interval start: the finished interval's firing-rate term, then the state reset (docs/model.rst §2, steps 6, 1)."""
    T, dt_ = number(rt, "n_T", st.steps), number(rt, "dt_ms", repr(dt))
    return f"""
        fr = c_reg*(nspk/{T} - f_target*{dt_})/{T}
        v = 0.0
        r = 0
        z = 0.0
        a = 0.0
        nspk = 0.0
        syn = 0.0
        """ + ("ztr = 0.0\n" if st.shared_zbar else "")


def readout_model(st: Structure, rt: bool = False) -> str:
    """State and constants of the readouts; the optimizer constants of the synapses onto them live here too."""
    ce = "usum : 1\n" if st.loss == "cross_entropy" else ""
    return (
        """
        y : 1          # readout potential relative to v_rest (mV)
        syn_out : 1    # weighted recurrent spikes of this step
        lacc : 1       # loss accumulator of the current iteration (MSE: sum err^2; CE: sum y* log pi)
        u : 1          # exp(y + v_rest) (cross-entropy)
        sig : 1        # readout signal (MSE: absolute potential; CE: softmax)
        err : 1        # error signal (0 outside the learning window)
        kappa_out : 1 (constant)
        p_i_out : 1 (constant)
        i_e_out : 1 (constant)
        zeta_out : 1 (constant)
        v_rest_out : 1 (constant)
        v_min_out : 1 (constant)
        v_max_out : 1 (constant)
        """
        + ce
        + OPTIMIZER_CONSTANTS
        + declare_numbers(rt, *NUMBERS["readout"])
    )


#: optimizer constants, stored on the postsynaptic group and read as ``<name>_post``
OPTIMIZER_CONSTANTS = """
        eta : 1 (constant)
        beta_1 : 1 (constant)
        beta_2 : 1 (constant)
        epsilon : 1 (constant)
        w_min : 1 (constant)
        w_max : 1 (constant)
        """


def readout_step(st: Structure) -> str:
    """Readout potential (docs/model.rst §2, aligned form)."""
    u = "u = exp(y + v_rest_out)\n" if st.loss == "cross_entropy" else ""
    return f"""
        y = (p_i_out*i_e_out + zeta_out*syn_out) + kappa_out*y
        y = clip(y, v_min_out, v_max_out)
        syn_out = 0.0
        {u}"""


def readout_signal(st: Structure, rt: bool = False) -> str:
    """Readout signal and error inside the learning window; ``target`` is a TimedArray."""
    if st.loss == "cross_entropy":
        sig = "sig = u/(usum + u)"
    else:
        sig = "sig = y + v_rest_out"
    window = f"int(t_in_timesteps % {number(rt, 'n_T', st.steps)} >= {number(rt, 'n_skip', st.steps - st.window)})"
    if st.loss == "cross_entropy":
        acc = f"lacc = lacc + {window}*(target(t, i)*log(sig))"
    else:
        acc = "lacc = lacc + err*err"
    return f"""
        {sig}
        err = (sig - target(t, i))*{window}
        {acc}
        """


def readout_interval(st: Structure, rt: bool = False) -> str:
    """Interval start of the readouts: reset; the loss accumulator restarts with each iteration."""
    return f"""
        y = 0.0
        syn_out = 0.0
        lacc = lacc*(1 - int(t_in_timesteps % {number(rt, 'n_BT', st.batch * st.steps)} == 0))
        """


def input_step(st: Structure, rt: bool = False) -> str:
    """Input group, every step: arrivals of this step (``zp``), and the NEST-quirk factor ``q``.

    ``x_in`` is the arrival raster.  ``q = 0`` at the last step of an interval for an input whose
    next spike arrives at position 1 of the next interval (see :func:`eligibility_step`).
    """
    ztr = "ztr = alpha_s*ztr + zeta_s*zp\n" if st.shared_zbar else ""
    T, T1 = number(rt, "n_T", st.steps), number(rt, "n_T1", st.steps - 1)
    return f"""
        zp = x_in(t, i)
        {ztr}q = 1.0 - int(t_in_timesteps % {T} == {T1})*x_in(t + 2*dt, i)
        """


def input_model(st: Structure, rt: bool = False) -> str:
    """State of the input group."""
    return """
        zp : 1         # a spike arrives at the recurrent neurons in this step (0/1)
        q : 1          # 0 where NEST drops the last learning-signal term of this input's synapses
        """ + (ZTR_MODEL if st.shared_zbar else "") + declare_numbers(rt, *NUMBERS["input"])


def hidden_synapse_model(st: Structure, rt: bool = False) -> str:
    """Input and recurrent e-prop synapses: weight, eligibility traces, optimizer state.

    Only what the structure needs is state: ``eps`` for adaptive neurons, ``elig`` when recorded
    (otherwise a temporary), Adam moments for Adam.  Less state, less memory traffic per step.
    """
    return ("""
        w : 1                 # weight (mV)
        """ + ("zbar = ztr_pre : 1  # presynaptic trace, kept by the presynaptic group\n" if st.shared_zbar
               else "zbar : 1  # presynaptic trace\n") + """
        ebar : 1              # low-pass filtered eligibility trace
        grad : 1              # sum_t L_t ebar_t over the interval
        sum_e : 1             # sum_t e_t over the interval
        cum : 1               # accumulated gradient (NEST 'cumulative')
        """ + ("eps : 1  # adaptation eligibility (epsilon)\n" if st.adaptive else "")
            + ("elig : 1  # eligibility trace e\n" if st.record else "")
            + optimizer_state(st) + declare_numbers(rt, *NUMBERS["synapse"]))


def optimizer_state(st: Structure) -> str:
    """Adam's per-synapse state (nothing for gradient descent)."""
    if st.optimizer != "adam":
        return ""
    return """
        m1 : 1                # Adam first moment
        m2 : 1                # Adam second moment
        b1p : 1               # beta_1 power
        b2p : 1               # beta_2 power
        """


def feedback_apart(st) -> bool:
    """True if the feedback B is a projection of its own (readout -> recurrent, all-to-all).

    ``w_fb`` is dense, so with a sparse readout projection B_jk exists for pairs without a readout
    synapse; only symmetric feedback (B = w per synapse) stays on the readout synapses.  Either
    family's structure.
    """
    return any(name == "out" for name, _ in st.sparse) and not st.symmetric_feedback


#: feedback synapses readout -> recurrent (:func:`feedback_apart`): B, and the learning signal summed
#: over readouts in ascending order, as on the readout synapses
FEEDBACK_MODEL = """
        B : 1                 # feedback weight readout -> recurrent (dimensionless)
        L_post = B*err_pre : 1 (summed)
        """


def out_synapse_model(st: Structure, rt: bool = False) -> str:
    """Recurrent -> readout synapses; they also carry the feedback weight B and sum the learning signal
    (unless :func:`feedback_apart`)."""
    feedback = "" if feedback_apart(st) else """B : 1                 # feedback weight readout -> recurrent (dimensionless)
        """
    summed = "" if feedback_apart(st) else """L_pre = B*err_post : 1 (summed)
        """
    return """
        w : 1
        """ + feedback + """zbar : 1
        grad : 1
        cum : 1
        """ + summed + optimizer_state(st) + declare_numbers(rt, *NUMBERS["synapse"])


def eligibility_step(st: Structure, inputs: bool) -> str:
    """z̄, e, epsilon, e-bar and the gradient sums of step n, once psi and L are known (docs/model.rst §2).

    ``zp_pre`` is 1 when a presynaptic spike arrives in this step (inputs: the arrival raster;
    recurrent: the spike of the previous step, 0 at an interval start, where NEST drops arrivals).

    NEST 3.10 computes an interval's gradient at the synapse's next presynaptic spike; for an input
    spike that arrives at position 1 of the next interval this happens before the learning signal of
    the interval's last step reaches the neuron, so that term counts as L = 0 (the reference models
    it): ``q_pre`` (see :func:`input_step`) is 0 then, else 1.
    """
    e = "psi_post*(zbar - beta_post*eps)" if st.adaptive else "psi_post*zbar"  # exact: beta = 0 otherwise
    lines = [] if st.shared_zbar else ["zbar = alpha_post*zbar + zeta_post*zp_pre"]
    lines.append(f"elig = {e}")
    if st.adaptive:
        lines.append("eps = rho_post*eps + elig")
    lines += ["ebar = kappa_post*ebar + one_m_kappa_post*elig",
              "grad = grad + (L_post*q_pre)*ebar" if inputs else "grad = grad + L_post*ebar",
              "sum_e = sum_e + elig"]
    return "\n".join(lines) + "\n"


def out_trace_step() -> str:
    """Readout synapses: z̄ with the readout's constants (this step's recurrent spikes), gradient e_k z̄."""
    return """
        zbar = kappa_out_post*zbar + zeta_out_post*z_pre
        grad = grad + err_post*zbar
        """


def optimizer_block(st: Structure, gradient: str, reset: str, rt: bool = False) -> str:
    """Interval block of a plastic projection: gradient of the finished interval, optimizer, trace reset.

    The optimizer acts once per iteration (``batch`` intervals): it is due in the blocks at steps
    ``k * batch * T``, k >= 1 (docs/model.rst §4, NEST ``WeightOptimizer``); the other blocks only accumulate.  Arithmetic masks (``due``) replace branches, which Brian2
    code lacks; ``1*x + 0*y == x`` keeps them exact.
    """
    # runtime mode always divides: by T_L or by 1.0 (x/1.0 == x)
    div = "/n_avg" if rt else (f"/{st.window}" if st.average_gradient else "")
    lines = [
        f"g_int = ({gradient}){div}",
        "cum = cum + g_int",
        f"due = int(t_in_timesteps % {number(rt, 'n_BT_s', st.batch * st.steps)} == 0)*int(t_in_timesteps > 0)",
        f"cum = cum/(1.0 + {number(rt, 'batch_m1', f'{st.batch - 1}.0')}*due)",
    ]
    if st.optimizer == "gradient_descent":
        lines += ["w_new = clip(w - eta_post*cum, w_min_post, w_max_post)"]
    else:
        lines += [
            "b1p_new = b1p*beta_1_post",
            "b2p_new = b2p*beta_2_post",
            # the (1 - due) term only keeps the masked-out division finite
            "alpha_t = eta_post*sqrt(1.0 - b2p_new)/((1.0 - b1p_new) + (1 - due))",
            "m1_new = beta_1_post*m1 + (1.0 - beta_1_post)*cum",
            "m2_new = beta_2_post*m2 + (1.0 - beta_2_post)*cum*cum",
            "w_new = clip(w - alpha_t*m1_new/(sqrt(m2_new) + epsilon_post), w_min_post, w_max_post)",
            "m1 = due*m1_new + (1 - due)*m1",
            "m2 = due*m2_new + (1 - due)*m2",
            "b1p = due*b1p_new + (1 - due)*b1p",
            "b2p = due*b2p_new + (1 - due)*b2p",
        ]
    lines += ["w = due*w_new + (1 - due)*w", "cum = cum*(1 - due)"]
    lines += reset.strip().splitlines()
    return "\n".join(line.strip() for line in lines) + "\n"


def hidden_reset(st: Structure) -> str:
    """Trace reset of the input and recurrent synapses at an interval start."""
    return (("" if st.shared_zbar else "zbar = 0.0\n") + "ebar = 0.0\ngrad = 0.0\nsum_e = 0.0\n"
            + ("eps = 0.0\n" if st.adaptive else ""))

OUT_RESET = """
zbar = 0.0
grad = 0.0
"""
