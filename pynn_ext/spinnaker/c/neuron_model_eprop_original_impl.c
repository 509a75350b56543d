/*! \file
 *  \brief Recurrent and readout neurons of the original e-prop family (docs/model.rst §1, §2),
 *         s16.15 fixed point; the step numbers are those of docs/model.rst §2.
 */
#include "neuron_model_eprop_original_impl.h"

void neuron_model_eprop_reset(neuron_t *neuron) {
    /* §2 step 1 */
    neuron->V_membrane = EPROP_REAL(0);
    neuron->A_thresh = EPROP_REAL(0);
    neuron->adaptation = EPROP_REAL(0);
    neuron->psi = EPROP_REAL(0);
    neuron->learning_signal = EPROP_REAL(0);
    neuron->refract_timer = 0;
    neuron->n_spikes = 0;
    neuron->z = 0;
}

REAL neuron_model_eprop_psi(const neuron_params_t *params, REAL d_real) {
    fx_t d = EPROP_BITS(d_real);
    fx_t h = EPROP_BITS(params->psi_height);
    fx_t inv_w = EPROP_BITS(params->psi_inv_width);
    fx_t q = fx_mul(fx_abs(d), inv_w);  /* |d| / w */
    fx_t psi;
    switch (params->surrogate) {
    case EPROP_PSI_EXPONENTIAL:
        psi = fx_mul(h, fx_exp(-q));
        break;
    case EPROP_PSI_FAST_SIGMOID: {
        fx_t u = fx_add(FX_ONE, q);
        psi = fx_div(h, fx_mul(u, u));
        break;
    }
    case EPROP_PSI_ARCTAN:
        psi = fx_div(h, fx_add(FX_ONE, fx_mul(q, q)));
        break;
    default: /* EPROP_PSI_PIECEWISE_LINEAR */
        psi = fx_mul(h, fx_max(0, fx_sub(FX_ONE, q)));
        break;
    }
    return EPROP_REAL(psi);
}

bool neuron_model_eprop_state_update(neuron_t *neuron, const neuron_params_t *params, REAL syn_input) {
    fx_t z_prev = neuron->z ? FX_ONE : 0;
    /* 2. refractory countdown */
    if (neuron->refract_timer > 0) {
        neuron->refract_timer -= 1;
    }
    /* 3. v <- alpha v + P_i I_e + zeta sum W s - V_th z_{n-1}, clamped at v_min */
    fx_t in = EPROP_BITS(syn_input);
    fx_t arrival = params->regular_arrival ? in : fx_decay(in, EPROP_DBITS(params->zeta));
    fx_t v = fx_add(fx_add(EPROP_BITS(params->i_offset), arrival),
                    fx_decay(EPROP_BITS(neuron->V_membrane), EPROP_DBITS(params->alpha)));
    if (neuron->z) {
        v = fx_sub(v, EPROP_BITS(params->v_thresh));
    }
    v = fx_max(v, EPROP_BITS(params->v_min));
    /* 4. a <- rho a + z_{n-1}, A = V_th + beta a */
    fx_t a = fx_add(fx_decay(EPROP_BITS(neuron->adaptation), EPROP_DBITS(params->rho)), z_prev);
    fx_t thr = fx_add(EPROP_BITS(params->v_thresh), fx_mul(EPROP_BITS(params->beta), a));
    /* 5. psi on v - A (0 while refractory), spike if v >= A and not refractory */
    fx_t psi = neuron->refract_timer > 0 ? 0 : EPROP_BITS(neuron_model_eprop_psi(params, EPROP_REAL(fx_sub(v, thr))));
    bool spike = v >= thr && neuron->refract_timer == 0;
    if (spike) {
        neuron->refract_timer = params->refract_steps;
        neuron->n_spikes += 1;
    }
    neuron->V_membrane = EPROP_REAL(v);
    neuron->adaptation = EPROP_REAL(a);
    neuron->A_thresh = EPROP_REAL(thr);
    neuron->psi = EPROP_REAL(psi);
    neuron->z = spike ? 1 : 0;
    return spike;
}

REAL neuron_model_eprop_firing_rate_term(const neuron_t *neuron, const neuron_params_t *params, uint32_t T) {
    /* §2 step 6: f_r = c_reg (n_spikes / T - f_target dt) / T */
    fx_t f_av = fx_div_int(fx_sat((int64_t) neuron->n_spikes * FX_ONE), (int32_t) T);
    return EPROP_REAL(fx_mul(EPROP_BITS(params->c_reg_per_T), fx_sub(f_av, EPROP_BITS(params->f_target_dt))));
}

REAL neuron_model_eprop_learning_signal(const REAL *feedback_row, const REAL *errors, uint32_t n_out) {
    fx_t L = 0;
    for (uint32_t k = 0; k < n_out; k++) {
        L = fx_add(L, fx_mul(EPROP_BITS(feedback_row[k]), EPROP_BITS(errors[k])));
    }
    return EPROP_REAL(L);
}

void readout_eprop_reset(readout_t *readout) {
    readout->V_membrane = EPROP_REAL(0);
    readout->signal = EPROP_REAL(0);
    readout->error = EPROP_REAL(0);
}

void readout_eprop_state_update(readout_t *readout, const readout_params_t *params, REAL syn_input) {
    fx_t in = EPROP_BITS(syn_input);
    fx_t arrival = params->regular_arrival ? in : fx_decay(in, EPROP_DBITS(params->zeta_out));
    fx_t v = fx_add(fx_add(EPROP_BITS(params->i_offset), arrival),
                    fx_decay(EPROP_BITS(readout->V_membrane), EPROP_DBITS(params->kappa_out)));
    readout->V_membrane = EPROP_REAL(fx_max(v, EPROP_BITS(params->v_min)));
}

void readout_eprop_errors(readout_t *readouts, const readout_params_t *params, uint32_t n_out,
                          const REAL *target, bool in_window) {
    if (params->cross_entropy) {
        /* u_k = exp(V_k - max_q V_q) (the softmax is unchanged by the shift, which keeps u in
         * (0, 1] instead of overflowing s16.15 above exp(11.09)); pi_k = u_k / (the others ascending,
         * then u_k), at least one LSB so that the cross-entropy stays finite */
        fx_t v_max = EPROP_BITS(readouts[0].V_membrane);
        for (uint32_t k = 1; k < n_out; k++) {
            v_max = fx_max(v_max, EPROP_BITS(readouts[k].V_membrane));
        }
        for (uint32_t k = 0; k < n_out; k++) {
            readouts[k].signal = EPROP_REAL(fx_exp(fx_sub(EPROP_BITS(readouts[k].V_membrane), v_max)));
        }
        fx_t pi[EPROP_MAX_READOUTS];
        for (uint32_t k = 0; k < n_out && k < EPROP_MAX_READOUTS; k++) {
            fx_t norm = 0;
            for (uint32_t q = 0; q < n_out; q++) {
                if (q != k) {
                    norm = fx_add(norm, EPROP_BITS(readouts[q].signal));
                }
            }
            norm = fx_add(norm, EPROP_BITS(readouts[k].signal));
            pi[k] = fx_max(1, fx_div(EPROP_BITS(readouts[k].signal), norm));
        }
        for (uint32_t k = 0; k < n_out && k < EPROP_MAX_READOUTS; k++) {
            readouts[k].signal = EPROP_REAL(pi[k]);
        }
    } else {
        for (uint32_t k = 0; k < n_out; k++) {
            readouts[k].signal = EPROP_REAL(fx_add(EPROP_BITS(readouts[k].V_membrane), EPROP_BITS(params->v_rest)));
        }
    }
    for (uint32_t k = 0; k < n_out; k++) {
        readouts[k].error = EPROP_REAL(in_window ? fx_sub(EPROP_BITS(readouts[k].signal), EPROP_BITS(target[k])) : 0);
    }
}
