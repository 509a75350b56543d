/*! \file
 *  \brief E-prop neuron models of the original family (NEST ``*_bsshslm_2020``), docs/model.rst §2:
 *         recurrent LIF / adaptive LIF and the readout, in sPyNNaker's neuron_model_*_impl style.
 *
 *  One struct of parameters (written by the host, read-only on the core) and one of state per
 *  neuron, both in DTCM.  All constants that depend on dt are derived on the host
 *  (pynn_ext/spinnaker/kernel_params.py), as sPyNNaker's Python side derives decays, so the core
 *  never calls exp() for a time constant.  Voltages are relative to the resting potential.
 *
 *  Per-synapse e-prop state is NOT in these structs (the upstream e-prop branch keeps
 *  ``syn_state[1024]`` in every neuron, hence 8 neurons per core): see
 *  synapse_dynamics_eprop_original_impl.h.
 */
#ifndef NEURON_MODEL_EPROP_ORIGINAL_IMPL_H
#define NEURON_MODEL_EPROP_ORIGINAL_IMPL_H

#include "eprop_fixed.h"

/*! Readouts a core can take error payloads from (the upstream branch's 20 readout channels) */
#define EPROP_MAX_READOUTS 20

/*! surrogate_gradient_function codes (docs/model.rst §1) */
typedef enum {
    EPROP_PSI_PIECEWISE_LINEAR = 0,  /*!< h max(0, 1 - |d|/w) */
    EPROP_PSI_EXPONENTIAL = 1,       /*!< h exp(-|d|/w) */
    EPROP_PSI_FAST_SIGMOID = 2,      /*!< h (1 + |d|/w)^-2 */
    EPROP_PSI_ARCTAN = 3             /*!< h / (1 + (d/w)^2) */
} eprop_surrogate_t;

/*! Recurrent neuron parameters (48 bytes).  Field order is the host's struct layout. */
typedef struct neuron_params_t {
    eprop_decay_t alpha;        /*!< exp(-dt/tau_m) */
    eprop_decay_t zeta;         /*!< 1 - alpha: spike-arrival factor without regular_spike_arrival */
    eprop_decay_t rho;          /*!< exp(-dt/tau_a) (0: not adaptive) */
    REAL i_offset;              /*!< P_i I_e = tau_m/C_m (1 - alpha) I_e [mV per step] */
    REAL v_thresh;              /*!< V_th - v_rest [mV] */
    REAL v_min;                 /*!< lower bound of V - v_rest [mV] (most negative REAL: none) */
    REAL beta;                  /*!< adaptation strength [mV] (0: not adaptive) */
    REAL psi_height;            /*!< surrogate_gradient_height h [1/mV] */
    REAL psi_inv_width;         /*!< 1 / surrogate_gradient_width [1/mV] */
    REAL c_reg_per_T;           /*!< c_reg / T (firing-rate regularisation) */
    REAL f_target_dt;           /*!< f_target dt [spikes per step] */
    uint16_t refract_steps;     /*!< tau_refrac / dt */
    uint8_t surrogate;          /*!< eprop_surrogate_t */
    uint8_t regular_arrival;    /*!< 1: zeta = 1 (regular_spike_arrival) */
} neuron_params_t;

/*! Recurrent neuron state (28 bytes) */
typedef struct neuron_t {
    REAL V_membrane;            /*!< V - v_rest [mV] */
    REAL A_thresh;              /*!< V_th + beta a, relative to v_rest [mV] */
    REAL adaptation;            /*!< a (0 for LIF) */
    REAL psi;                   /*!< surrogate gradient of this step [1/mV] */
    REAL learning_signal;       /*!< L of this step (from the readouts' error payloads) */
    int32_t refract_timer;      /*!< steps left in refractoriness */
    uint16_t n_spikes;          /*!< spikes in this update interval */
    uint8_t z;                  /*!< spike of this step (z_{n-1} in the next step) */
    uint8_t pad;
} neuron_t;

/*! Readout parameters (24 bytes) */
typedef struct readout_params_t {
    eprop_decay_t kappa_out;    /*!< exp(-dt/tau_m) of the readout */
    eprop_decay_t zeta_out;     /*!< 1 - kappa_out (spike-arrival factor without regular arrival) */
    REAL i_offset;              /*!< P_i I_e [mV per step] */
    REAL v_min;                 /*!< lower bound of V - v_rest [mV] */
    REAL v_rest;                /*!< E_L [mV]: the readout signal is V - v_rest + v_rest */
    uint8_t regular_arrival;    /*!< 1: zeta_out = 1 */
    uint8_t cross_entropy;      /*!< 1: softmax signal and cross-entropy error, 0: mean squared error */
    uint16_t pad;
} readout_params_t;

/*! Readout state (12 bytes) */
typedef struct readout_t {
    REAL V_membrane;            /*!< y - v_rest [mV] */
    REAL signal;                /*!< V + v_rest (MSE) or softmax pi_k (cross-entropy) */
    REAL error;                 /*!< e_k = signal - target in the learning window, else 0:
                                     sent as the multicast payload of the learning signal */
} readout_t;

/*! §2 step 1: reset at the start of an update interval */
void neuron_model_eprop_reset(neuron_t *neuron);

/*! §1 surrogate gradient at d = V - A (0 while refractory) */
REAL neuron_model_eprop_psi(const neuron_params_t *params, REAL d);

/*! §2 steps 2-5: one time step with the summed weights of this step's arrivals; returns the spike */
bool neuron_model_eprop_state_update(neuron_t *neuron, const neuron_params_t *params, REAL syn_input);

/*! §2 step 6: firing-rate term f_r at the end of an interval of T steps */
REAL neuron_model_eprop_firing_rate_term(const neuron_t *neuron, const neuron_params_t *params, uint32_t T);

/*! L_j = sum_k B_jk e_k over the readouts' error payloads, k ascending */
REAL neuron_model_eprop_learning_signal(const REAL *feedback_row, const REAL *errors, uint32_t n_out);

/*! Readout reset at the start of an interval */
void readout_eprop_reset(readout_t *readout);

/*! Readout potential: V <- kappa_out V + P_i I_e + zeta_out sum_j W_kj z_j, clamped at v_min */
void readout_eprop_state_update(readout_t *readout, const readout_params_t *params, REAL syn_input);

/*! Signals and errors of all n_out readouts (softmax across them for cross-entropy);
 *  target: per readout; in_window: inside the learning window (else the error is 0) */
void readout_eprop_errors(readout_t *readouts, const readout_params_t *params, uint32_t n_out,
                          const REAL *target, bool in_window);

#endif /* NEURON_MODEL_EPROP_ORIGINAL_IMPL_H */
