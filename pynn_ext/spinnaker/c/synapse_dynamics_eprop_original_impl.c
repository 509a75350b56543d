/*! \file
 *  \brief Eligibility traces, gradients and the weight optimizer of the original e-prop family
 *         (docs/model.rst §2 synapse, §4), s16.15 fixed point.
 */
#include "synapse_dynamics_eprop_original_impl.h"

/*! z-bar <- decay z-bar + zeta s for n rows; zeta of an arrival: 1, or 1 - decay rounded once to s16.15 */
static void zbar_rows(REAL *z_bar, const uint8_t *arrived, uint32_t n, fxd_t decay, bool regular, fxd_t zeta_d) {
    fx_t zeta = regular ? FX_ONE : fx_decay(FX_ONE, zeta_d);
    for (uint32_t i = 0; i < n; i++) {
        fx_t zb = fx_decay(EPROP_BITS(z_bar[i]), decay);
        z_bar[i] = EPROP_REAL(arrived[i] ? fx_add(zb, zeta) : zb);
    }
}

void synapse_dynamics_eprop_zbar_update(REAL *z_bar, const uint8_t *arrived, uint32_t n_pre,
                                        const neuron_params_t *params) {
    zbar_rows(z_bar, arrived, n_pre, EPROP_DBITS(params->alpha), params->regular_arrival, EPROP_DBITS(params->zeta));
}

void synapse_dynamics_eprop_step(eprop_syn_trace_t *traces, REAL *epsilon, const REAL *z_bar, uint32_t n_pre,
                                 const neuron_params_t *params, const neuron_t *neuron,
                                 const eprop_synapse_params_t *syn, const uint8_t *zero_L) {
    fx_t psi = EPROP_BITS(neuron->psi);
    fx_t L = EPROP_BITS(neuron->learning_signal);
    fx_t beta = EPROP_BITS(params->beta);
    fxd_t rho = EPROP_DBITS(params->rho);
    fxd_t kappa = EPROP_DBITS(syn->kappa);
    fxd_t one_minus_kappa = EPROP_DBITS(syn->one_minus_kappa);
    for (uint32_t i = 0; i < n_pre; i++) {
        eprop_syn_trace_t *tr = &traces[i];
        fx_t eps = epsilon != 0 ? EPROP_BITS(epsilon[i]) : 0;
        /* e = psi (z-bar - beta epsilon); epsilon <- rho epsilon + e (LIF: beta = rho = 0) */
        fx_t e = fx_mul(psi, fx_sub(EPROP_BITS(z_bar[i]), fx_mul(beta, eps)));
        if (epsilon != 0) {
            epsilon[i] = EPROP_REAL(fx_add(fx_decay(eps, rho), e));
        }
        /* e-bar <- kappa e-bar + (1 - kappa) e */
        fx_t e_bar = fx_add(fx_decay(EPROP_BITS(tr->e_bar), kappa), fx_decay(e, one_minus_kappa));
        tr->e_bar = EPROP_REAL(e_bar);
        fx_t l = (zero_L != 0 && zero_L[i]) ? 0 : L;
        tr->grad = EPROP_REAL(fx_add(EPROP_BITS(tr->grad), fx_mul(l, e_bar)));
        tr->sum_e = EPROP_REAL(fx_add(EPROP_BITS(tr->sum_e), e));
    }
}

void synapse_dynamics_eprop_readout_zbar_update(REAL *z_bar_out, const uint8_t *spiked, uint32_t n_pre,
                                                const readout_params_t *params) {
    zbar_rows(z_bar_out, spiked, n_pre, EPROP_DBITS(params->kappa_out), params->regular_arrival,
              EPROP_DBITS(params->zeta_out));
}

void synapse_dynamics_eprop_readout_step(REAL *grad_row, const REAL *z_bar_out, uint32_t n_pre, REAL error) {
    fx_t err = EPROP_BITS(error);
    for (uint32_t j = 0; j < n_pre; j++) {
        grad_row[j] = EPROP_REAL(fx_add(EPROP_BITS(grad_row[j]), fx_mul(err, EPROP_BITS(z_bar_out[j]))));
    }
}

REAL synapse_dynamics_eprop_gradient(const eprop_syn_trace_t *trace, REAL firing_rate_term,
                                     const eprop_synapse_params_t *syn) {
    fx_t g = fx_add(EPROP_BITS(trace->grad), fx_mul(EPROP_BITS(firing_rate_term), EPROP_BITS(trace->sum_e)));
    return EPROP_REAL(syn->average_steps > 1 ? fx_div_int(g, (int32_t) syn->average_steps) : g);
}

/*! Adam's step size alpha_k = eta sqrt(1 - beta_2^k) / (1 - beta_1^k) in u0.32 (TF1 form),
 *  from q1 = 1 - beta_1^k and q2 = 1 - beta_2^k (q1 > 0) */
static fxd_t adam_step_size(const eprop_optimizer_params_t *opt, fxd_t q1, fxd_t q2) {
    uint64_t root = fx_isqrt64((uint64_t) q2 << 32);  /* sqrt(q2) in u0.32 */
    uint64_t num = ((uint64_t) EPROP_DBITS(opt->eta) * root + (UINT64_C(1) << 31)) >> 32;
    uint64_t a = ((num << 32) + q1 / 2) / q1;
    return a > UINT32_MAX ? UINT32_MAX : (fxd_t) a;
}

bool synapse_dynamics_eprop_optimize(eprop_plastic_synapse_t *s, const eprop_optimizer_params_t *opt,
                                     REAL gradient, uint32_t idx) {
    fx_t cum = fx_add(EPROP_BITS(s->cumulative), EPROP_BITS(gradient));
    uint32_t current = 1 + idx / opt->batch_size;
    if (s->optimization_step >= current) {
        s->cumulative = EPROP_REAL(cum);
        return false;
    }
    cum = fx_div_int(cum, (int32_t) opt->batch_size);
    fx_t w = EPROP_BITS(s->weight);
    if (opt->kind == EPROP_GRADIENT_DESCENT) {
        w = fx_sub(w, fx_decay(cum, EPROP_DBITS(opt->eta)));
    } else {
        /* catch up the missed steps; the real gradient enters only the first of them */
        int64_t m = s->m, v = s->v;
        fxd_t q1 = EPROP_DBITS(s->one_minus_beta_1_power), q2 = EPROP_DBITS(s->one_minus_beta_2_power);
        for (uint32_t step = s->optimization_step; step < current; step++) {
            /* 1 - beta^(k+1) = (1 - beta) + beta (1 - beta^k) */
            q1 = EPROP_DBITS(opt->one_minus_beta_1) + fxd_mul(EPROP_DBITS(opt->beta_1), q1);
            q2 = EPROP_DBITS(opt->one_minus_beta_2) + fxd_mul(EPROP_DBITS(opt->beta_2), q2);
            fxd_t alpha = adam_step_size(opt, q1, q2);
            m = fx46_sat(fx46_decay(m, EPROP_DBITS(opt->beta_1))
                         + fx46_decay(fx46_from_fx(cum), EPROP_DBITS(opt->one_minus_beta_1)));
            v = fx46_sat(fx46_decay(v, EPROP_DBITS(opt->beta_2))
                         + fx46_scaled_square(cum, EPROP_DBITS(opt->one_minus_beta_2)));
            /* m / (sqrt(v) + eps): sqrt of Q46 is Q23; the quotient in s16.15 */
            int64_t den = ((int64_t) fx_isqrt64((uint64_t) v) + (int64_t) opt->epsilon) * 256;
            fx_t ratio = fx_sat(fx_rdiv64(m, den));
            w = fx_sub(w, fx_decay(ratio, alpha));
            cum = 0;
        }
        s->m = m;
        s->v = v;
        s->one_minus_beta_1_power = EPROP_DECAY(q1);
        s->one_minus_beta_2_power = EPROP_DECAY(q2);
    }
    w = fx_min(fx_max(w, EPROP_BITS(opt->w_min)), EPROP_BITS(opt->w_max));
    s->weight = EPROP_REAL(w);
    s->cumulative = EPROP_REAL(0);
    s->optimization_step = (uint16_t) current;
    return true;
}

uint32_t eprop_neurons_per_core(uint32_t n_pre, uint32_t fan_in, uint32_t n_out, bool adaptive) {
    uint32_t fixed = EPROP_DTCM_RESERVED + 4u * n_pre;  /* runtime + one z-bar per presynaptic row */
    if (fixed >= EPROP_DTCM_BYTES) {
        return 0;
    }
    uint32_t per_neuron = EPROP_DTCM_PER_NEURON_RUNTIME + (uint32_t) sizeof(neuron_params_t)
        + (uint32_t) sizeof(neuron_t) + 4u * n_out
        + fan_in * (adaptive ? EPROP_TRACE_BYTES_ADAPTIVE : EPROP_TRACE_BYTES_LIF);
    return (EPROP_DTCM_BYTES - fixed) / per_neuron;
}
