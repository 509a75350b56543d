/*! \file
 *  \brief E-prop synapses of the original family (docs/model.rst §2 synapse, §4 optimizer):
 *         where the per-synapse state lives, and the functions that advance it.
 *
 *  Layout (the point of this design: more than the upstream branch's 8 neurons per core)
 *
 *  - Per presynaptic source on a core (one per synaptic row), in DTCM: ``z_bar`` (4 bytes).
 *    z-bar_ji = alpha_j z-bar + zeta_j s_i depends on the post neuron only through alpha and zeta,
 *    which are the same for all neurons of a sPyNNaker population slice, so one z-bar per row serves
 *    every synapse of the row (the upstream branch stores it per synapse).
 *  - Per synapse, in DTCM, updated every step: ``eprop_syn_trace_t`` = e-bar, the interval's
 *    gradient sum, the sum of e for the firing-rate term (12 bytes), plus the adaptation trace
 *    epsilon for adaptive targets (16 bytes in all).  Arrays are allocated to the core's real fan-in
 *    (n_neurons x n_pre, post-major), not to a fixed 1024 per neuron.
 *  - Per synapse, in the SDRAM synaptic row next to the weight, touched once per update interval:
 *    ``eprop_plastic_synapse_t`` = weight, cumulative gradient, optimisation step, Adam moments
 *    (64-bit Q46) and bias-correction powers (40 bytes).  The optimizer walks the rows by DMA at the interval end.
 *  - The learning signal reaches a core as the readouts' errors e_k (one multicast packet per
 *    readout per step, the 32-bit REAL as payload); each neuron keeps its feedback row B_j. in
 *    DTCM (4 n_out bytes) and forms L_j = sum_k B_jk e_k itself, so no per-neuron packets are sent.
 *
 *  Neurons per core from the DTCM budget (docs/spinnaker.rst, ``eprop_neurons_per_core``):
 *  N = floor((64 KiB - EPROP_DTCM_RESERVED - 4 n_pre) / (EPROP_DTCM_PER_NEURON_RUNTIME
 *      + sizeof(neuron_params_t) + sizeof(neuron_t) + 4 n_out + fan_in * trace bytes)).
 */
#ifndef SYNAPSE_DYNAMICS_EPROP_ORIGINAL_IMPL_H
#define SYNAPSE_DYNAMICS_EPROP_ORIGINAL_IMPL_H

#include "eprop_fixed.h"
#include "neuron_model_eprop_original_impl.h"

/*! DTCM of an ARM968 core [bytes] */
#define EPROP_DTCM_BYTES 65536u
/*! DTCM kept for the sPyNNaker runtime: stack, DMA row buffers, spike input queue, recording,
 *  provenance and data-specification tables [bytes] (an estimate, stated in docs/spinnaker.rst) */
#define EPROP_DTCM_RESERVED 16384u
/*! DTCM per neuron used by the runtime: 2 synapse types x 16 delay slots x 2-byte ring-buffer
 *  entries, plus 2 REAL input buffers [bytes] */
#define EPROP_DTCM_PER_NEURON_RUNTIME 72u

/*! Per-synapse eligibility state in DTCM, advanced every time step */
typedef struct eprop_syn_trace_t {
    REAL e_bar;                 /*!< e-bar = kappa e-bar + (1 - kappa) e */
    REAL grad;                  /*!< sum_t L_t e-bar_t over the interval */
    REAL sum_e;                 /*!< sum_t e_t (firing-rate term) */
} eprop_syn_trace_t;

/*! DTCM bytes per synapse: eprop_syn_trace_t, plus one REAL epsilon (adaptation eligibility,
 *  a separate array allocated only for adaptive targets) */
#define EPROP_TRACE_BYTES_LIF 12u
#define EPROP_TRACE_BYTES_ADAPTIVE 16u

/*! Per-synapse plastic state in the SDRAM synaptic row (40 bytes) */
typedef struct eprop_plastic_synapse_t {
    int64_t m;                  /*!< Adam first moment, Q46 (see eprop_fixed.h) */
    int64_t v;                  /*!< Adam second moment, Q46 */
    REAL weight;                /*!< W_ji [mV] */
    REAL cumulative;            /*!< gradient summed over the batch */
    eprop_decay_t one_minus_beta_1_power; /*!< 1 - beta_1^k (u0.32 cannot hold beta^0 = 1) */
    eprop_decay_t one_minus_beta_2_power; /*!< 1 - beta_2^k */
    uint16_t optimization_step; /*!< NEST's optimization_step (starts at 1) */
    uint16_t target;            /*!< post-neuron index on the core (sPyNNaker's plastic-control word) */
} eprop_plastic_synapse_t;

/*! Optimizer codes */
typedef enum { EPROP_GRADIENT_DESCENT = 0, EPROP_ADAM = 1 } eprop_optimizer_kind_t;

/*! Settings shared by all synapses of a projection (docs/model.rst §4), 40 bytes */
typedef struct eprop_optimizer_params_t {
    eprop_decay_t eta;          /*!< learning rate (< 1) */
    eprop_decay_t beta_1;
    eprop_decay_t beta_2;
    eprop_decay_t one_minus_beta_1;
    eprop_decay_t one_minus_beta_2;
    uint32_t epsilon;           /*!< Adam epsilon in Q23 (the scale of sqrt of a Q46 moment), >= 1 */
    REAL w_min;
    REAL w_max;
    uint32_t batch_size;
    uint32_t kind;              /*!< eprop_optimizer_kind_t */
} eprop_optimizer_params_t;

/*! Settings of the eligibility filter of the recurrent synapses, 12 bytes */
typedef struct eprop_synapse_params_t {
    eprop_decay_t kappa;        /*!< exp(-dt/tau_m_readout) */
    eprop_decay_t one_minus_kappa;
    uint32_t average_steps;     /*!< T_L with average_gradient, else 1 */
} eprop_synapse_params_t;

/*! z-bar of every presynaptic row of a core: z-bar <- alpha z-bar + zeta s (arrived[i] = s_i) */
void synapse_dynamics_eprop_zbar_update(REAL *z_bar, const uint8_t *arrived, uint32_t n_pre,
                                        const neuron_params_t *params);

/*! One step of the n_pre synapse traces of one neuron (after its state update): e, epsilon
 *  (NULL for LIF targets), e-bar, and the gradient sum with the neuron's learning signal.  zero_L (NULL: none) marks rows
 *  that integrate L = 0 in this step (NEST 3.10's last-step behaviour, docs/model.rst §6). */
void synapse_dynamics_eprop_step(eprop_syn_trace_t *traces, REAL *epsilon, const REAL *z_bar, uint32_t n_pre,
                                 const neuron_params_t *params, const neuron_t *neuron,
                                 const eprop_synapse_params_t *syn, const uint8_t *zero_L);

/*! Readout synapses of one readout: grad_k. += e_k z-bar-out (z-bar-out shared per presynaptic row) */
void synapse_dynamics_eprop_readout_step(REAL *grad_row, const REAL *z_bar_out, uint32_t n_pre, REAL error);

/*! z-bar-out <- kappa_out z-bar-out + zeta_out z of the recurrent rows feeding the readouts */
void synapse_dynamics_eprop_readout_zbar_update(REAL *z_bar_out, const uint8_t *spiked, uint32_t n_pre,
                                                const readout_params_t *params);

/*! The interval's gradient of one recurrent synapse: grad + f_r sum_e, averaged if asked */
REAL synapse_dynamics_eprop_gradient(const eprop_syn_trace_t *trace, REAL firing_rate_term,
                                     const eprop_synapse_params_t *syn);

/*! NEST's optimized_weight(idx, gradient, weight) (docs/model.rst §4); returns true if it stepped */
bool synapse_dynamics_eprop_optimize(eprop_plastic_synapse_t *synapse, const eprop_optimizer_params_t *opt,
                                     REAL gradient, uint32_t idx);

/*! Neurons per core from the DTCM budget (see the file comment) */
uint32_t eprop_neurons_per_core(uint32_t n_pre, uint32_t fan_in, uint32_t n_out, bool adaptive);

#endif /* SYNAPSE_DYNAMICS_EPROP_ORIGINAL_IMPL_H */
