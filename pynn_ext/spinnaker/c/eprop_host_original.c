/*! \file
 *  \brief Host driver of the original-family kernel (see eprop_host_original.h); the order of the
 *         per-step work is that of eprop_plugins/reference/original.py (docs/model.rst §0, §2).
 */
#include "eprop_host_original.h"

#define ALIGN8(x) (((x) + 7u) & ~7u)

typedef struct {
    neuron_t *neurons;
    readout_t *readouts;
    eprop_syn_trace_t *traces;        /* n_rec x n_pre */
    REAL *epsilon;                    /* n_rec x n_pre */
    REAL *z_bar;                      /* n_cores x n_pre */
    REAL *z_bar_out;                  /* n_rec */
    REAL *grad_out;                   /* n_out x n_rec */
    eprop_plastic_synapse_t *hidden;  /* n_rec x n_pre */
    eprop_plastic_synapse_t *out;     /* n_out x n_rec */
    REAL *w_fb;                       /* n_rec x n_out */
    REAL *errors;                     /* n_out */
    REAL *fr;                         /* n_rec */
    REAL *sum_e_before;               /* n_record */
    REAL *grad_out_before;            /* n_record */
    uint8_t *arrived;                 /* n_pre */
    uint8_t *spiked;                  /* n_rec */
    uint8_t *hist_arrived;            /* (EPROP_MAX_LEARNING_DELAY + 1) x n_pre: the delay line of the rows */
    REAL *hist_psi;                   /* (EPROP_MAX_LEARNING_DELAY + 1) x n_rec: ... of psi */
    REAL *hist_L;                     /* (EPROP_MAX_LEARNING_DELAY + 1) x n_rec: ... of the learning signal */
} workspace_t;

static uint32_t carve(workspace_t *w, uint8_t *base, uint32_t n_in, uint32_t n_rec, uint32_t n_out,
                      uint32_t n_cores, uint32_t n_record) {
    uint32_t n_pre = n_in + n_rec, off = 0;
#define TAKE(field, type, count) do { if (w) w->field = (type *) (void *) (base + off); \
        off += ALIGN8((uint32_t) sizeof(type) * (count)); } while (0)
    TAKE(neurons, neuron_t, n_rec);
    TAKE(readouts, readout_t, n_out);
    TAKE(traces, eprop_syn_trace_t, n_rec * n_pre);
    TAKE(epsilon, REAL, n_rec * n_pre);
    TAKE(z_bar, REAL, n_cores * n_pre);
    TAKE(z_bar_out, REAL, n_rec);
    TAKE(grad_out, REAL, n_out * n_rec);
    TAKE(hidden, eprop_plastic_synapse_t, n_rec * n_pre);
    TAKE(out, eprop_plastic_synapse_t, n_out * n_rec);
    TAKE(w_fb, REAL, n_rec * n_out);
    TAKE(errors, REAL, n_out);
    TAKE(fr, REAL, n_rec);
    TAKE(sum_e_before, REAL, n_record);
    TAKE(grad_out_before, REAL, n_record);
    TAKE(arrived, uint8_t, n_pre);
    TAKE(spiked, uint8_t, n_rec);
    TAKE(hist_arrived, uint8_t, (EPROP_MAX_LEARNING_DELAY + 1) * n_pre);
    TAKE(hist_psi, REAL, (EPROP_MAX_LEARNING_DELAY + 1) * n_rec);
    TAKE(hist_L, REAL, (EPROP_MAX_LEARNING_DELAY + 1) * n_rec);
#undef TAKE
    return off;
}

uint32_t eprop_host_workspace_bytes(uint32_t n_in, uint32_t n_rec, uint32_t n_out, uint32_t n_cores,
                                    uint32_t n_record) {
    return carve(0, 0, n_in, n_rec, n_out, n_cores, n_record);
}

static void fill_zero(void *p, uint32_t bytes) {
    uint8_t *b = (uint8_t *) p;
    for (uint32_t i = 0; i < bytes; i++) {
        b[i] = 0;
    }
}

static void init_plastic(eprop_plastic_synapse_t *s, REAL weight, uint16_t target) {
    s->weight = weight;
    s->cumulative = EPROP_REAL(0);
    s->m = 0;
    s->v = 0;
    s->one_minus_beta_1_power = EPROP_DECAY(0);  /* 1 - beta^0 */
    s->one_minus_beta_2_power = EPROP_DECAY(0);
    s->optimization_step = 1;
    s->target = target;
}

uint32_t eprop_host_sizeof(uint32_t which) {
    switch (which) {
    case 0: return (uint32_t) sizeof(neuron_params_t);
    case 1: return (uint32_t) sizeof(neuron_t);
    case 2: return (uint32_t) sizeof(readout_params_t);
    case 3: return (uint32_t) sizeof(readout_t);
    case 4: return (uint32_t) sizeof(eprop_syn_trace_t);
    case 5: return (uint32_t) sizeof(eprop_plastic_synapse_t);
    case 6: return (uint32_t) sizeof(eprop_optimizer_params_t);
    case 7: return (uint32_t) sizeof(eprop_synapse_params_t);
    case 8: return (uint32_t) sizeof(eprop_host_network_t);
    default: return 0;
    }
}

/*! the recurrent core (population) of neuron j */
static uint32_t core_of(const eprop_host_network_t *net, uint32_t j) {
    uint32_t c = 0;
    while (c + 1 < net->n_cores && j >= net->core_start[c + 1]) {
        c++;
    }
    return c;
}

/*! The recurrent synapses' work of step t of sequence s, from the delay line: z-bar of every row
 *  (per core), e, epsilon, e-bar and the gradient sum of every neuron with that step's psi and L,
 *  and the recordings of the recorded input/recurrent synapses at that step. */
static void recurrent_synapses(const eprop_host_network_t *net, workspace_t *w, uint32_t s, uint32_t t,
                               const uint8_t *zero_L) {
    const uint32_t n_in = net->n_in, n_rec = net->n_rec, n_pre = n_in + n_rec, T = net->T;
    const uint32_t slot = t % (net->learning_delay + 1);
    const uint8_t *arrived = &w->hist_arrived[slot * n_pre];
    const uint64_t n = (uint64_t) s * T + t;
    for (uint32_t c = 0; c < net->n_cores; c++) {
        synapse_dynamics_eprop_zbar_update(&w->z_bar[c * n_pre], arrived, n_pre,
                                           &net->neuron_params[net->core_start[c]]);
    }
    for (uint32_t q = 0; q < net->n_record; q++) {
        int32_t proj = net->record[3 * q], pre = net->record[3 * q + 1], post = net->record[3 * q + 2];
        if (proj != 2) {
            uint32_t col = (uint32_t) (proj == 0 ? pre : (int32_t) n_in + pre);
            w->sum_e_before[q] = w->traces[post * n_pre + col].sum_e;
        }
    }
    for (uint32_t j = 0; j < n_rec; j++) {
        neuron_t late;  /* the neuron as the synapses see it at step t */
        late.psi = w->hist_psi[slot * n_rec + j];
        late.learning_signal = w->hist_L[slot * n_rec + j];
        synapse_dynamics_eprop_step(&w->traces[j * n_pre], &w->epsilon[j * n_pre],
                                    &w->z_bar[core_of(net, j) * n_pre], n_pre, &net->neuron_params[j],
                                    &late, net->synapse_params, t == T - 1 ? zero_L : 0);
    }
    for (uint32_t q = 0; q < net->n_record; q++) {
        int32_t proj = net->record[3 * q], pre = net->record[3 * q + 1], post = net->record[3 * q + 2];
        if (proj == 2) {
            continue;
        }
        uint64_t o = n * net->n_record + q;
        uint32_t col = (uint32_t) (proj == 0 ? pre : (int32_t) n_in + pre);
        const eprop_syn_trace_t *tr = &w->traces[post * n_pre + col];
        net->syn_zbar[o] = w->z_bar[core_of(net, (uint32_t) post) * n_pre + col];
        net->syn_e[o] = EPROP_REAL(fx_sub(EPROP_BITS(tr->sum_e), EPROP_BITS(w->sum_e_before[q])));
        net->syn_ebar[o] = tr->e_bar;
    }
}

int32_t eprop_host_original_run(const eprop_host_network_t *net) {
    const uint32_t n_in = net->n_in, n_rec = net->n_rec, n_out = net->n_out, T = net->T;
    const uint32_t n_pre = n_in + n_rec;
    const uint32_t D = net->learning_delay;
    if (n_out > EPROP_MAX_READOUTS || net->n_cores == 0 || net->core_start[net->n_cores] != n_rec
            || D > EPROP_MAX_LEARNING_DELAY) {
        return -1;
    }
    workspace_t w;
    uint32_t bytes = carve(&w, (uint8_t *) net->workspace, n_in, n_rec, n_out, net->n_cores, net->n_record);
    fill_zero(net->workspace, bytes);
    const readout_params_t *rp = net->readout_params;
    const eprop_synapse_params_t *sp = net->synapse_params;

    for (uint32_t j = 0; j < n_rec; j++) {
        for (uint32_t i = 0; i < n_pre; i++) {
            init_plastic(&w.hidden[j * n_pre + i], net->w_hidden[j * n_pre + i], (uint16_t) j);
        }
        for (uint32_t k = 0; k < n_out; k++) {
            w.w_fb[j * n_out + k] = net->w_fb[j * n_out + k];
        }
    }
    for (uint32_t k = 0; k < n_out; k++) {
        for (uint32_t j = 0; j < n_rec; j++) {
            init_plastic(&w.out[k * n_rec + j], net->w_out[k * n_rec + j], (uint16_t) k);
        }
    }

    for (uint32_t s = 0; s < net->n_sequences; s++) {
        /* interval start: neurons, readouts and traces reset (§2 step 1) */
        for (uint32_t j = 0; j < n_rec; j++) {
            neuron_model_eprop_reset(&w.neurons[j]);
        }
        for (uint32_t k = 0; k < n_out; k++) {
            readout_eprop_reset(&w.readouts[k]);
        }
        fill_zero(w.traces, (uint32_t) sizeof(eprop_syn_trace_t) * n_rec * n_pre);
        fill_zero(w.epsilon, (uint32_t) sizeof(REAL) * n_rec * n_pre);
        fill_zero(w.z_bar, (uint32_t) sizeof(REAL) * net->n_cores * n_pre);
        fill_zero(w.z_bar_out, (uint32_t) sizeof(REAL) * n_rec);
        fill_zero(w.grad_out, (uint32_t) sizeof(REAL) * n_out * n_rec);
        const uint8_t *zero_L = net->zero_L + (uint64_t) s * n_pre;

        for (uint32_t t = 0; t < T; t++) {
            const uint64_t n = (uint64_t) s * T + t;
            /* arrivals of this step: inputs of step n, recurrent spikes of step n - 1 */
            for (uint32_t i = 0; i < n_in; i++) {
                w.arrived[i] = net->inputs[n * n_in + i];
            }
            for (uint32_t j = 0; j < n_rec; j++) {
                w.arrived[n_in + j] = w.neurons[j].z;
            }
            /* recurrent neurons: the summed weights of the arrivals (exact, saturated once) */
            for (uint32_t j = 0; j < n_rec; j++) {
                int64_t sum = 0;
                for (uint32_t i = 0; i < n_pre; i++) {
                    if (w.arrived[i]) {
                        sum += EPROP_BITS(w.hidden[j * n_pre + i].weight);
                    }
                }
                w.spiked[j] = neuron_model_eprop_state_update(&w.neurons[j], &net->neuron_params[j],
                                                             EPROP_REAL(fx_sat(sum))) ? 1 : 0;
            }
            /* the rows, psi and L of this step go into the delay line (L is formed below) */
            uint32_t slot = t % (D + 1);
            for (uint32_t i = 0; i < n_pre; i++) {
                w.hist_arrived[slot * n_pre + i] = w.arrived[i];
            }
            /* readouts: this step's recurrent spikes arrive now */
            for (uint32_t k = 0; k < n_out; k++) {
                int64_t sum = 0;
                for (uint32_t j = 0; j < n_rec; j++) {
                    if (w.spiked[j]) {
                        sum += EPROP_BITS(w.out[k * n_rec + j].weight);
                    }
                }
                readout_eprop_state_update(&w.readouts[k], rp, EPROP_REAL(fx_sat(sum)));
            }
            readout_eprop_errors(w.readouts, rp, n_out, &net->target[n * n_out], t >= T - net->T_L);
            for (uint32_t k = 0; k < n_out; k++) {
                w.errors[k] = w.readouts[k].error;  /* the multicast payloads */
            }
            /* learning signal of every recurrent neuron, from the readouts' error payloads */
            for (uint32_t j = 0; j < n_rec; j++) {
                neuron_t *nj = &w.neurons[j];
                nj->learning_signal = neuron_model_eprop_learning_signal(&w.w_fb[j * n_out], w.errors, n_out);
                w.hist_psi[slot * n_rec + j] = nj->psi;
                w.hist_L[slot * n_rec + j] = nj->learning_signal;
            }
            if (t >= D) {
                recurrent_synapses(net, &w, s, t - D, zero_L);
            }
            for (uint32_t q = 0; q < net->n_record; q++) {
                if (net->record[3 * q] == 2) {
                    w.grad_out_before[q] = w.grad_out[net->record[3 * q + 2] * n_rec + net->record[3 * q + 1]];
                }
            }
            synapse_dynamics_eprop_readout_zbar_update(w.z_bar_out, w.spiked, n_rec, rp);
            for (uint32_t k = 0; k < n_out; k++) {
                synapse_dynamics_eprop_readout_step(&w.grad_out[k * n_rec], w.z_bar_out, n_rec, w.errors[k]);
            }
            /* recordings */
            for (uint32_t j = 0; j < n_rec; j++) {
                const neuron_t *nj = &w.neurons[j];
                net->v[n * n_rec + j] = nj->V_membrane;
                net->z[n * n_rec + j] = nj->z;
                net->psi[n * n_rec + j] = nj->psi;
                net->adaptation[n * n_rec + j] = nj->adaptation;
                net->threshold[n * n_rec + j] = nj->A_thresh;
                net->learning_signal[n * n_rec + j] = nj->learning_signal;
            }
            for (uint32_t k = 0; k < n_out; k++) {
                net->readout_v[n * n_out + k] = w.readouts[k].V_membrane;
                net->signal[n * n_out + k] = w.readouts[k].signal;
                net->error[n * n_out + k] = w.readouts[k].error;
            }
            for (uint32_t q = 0; q < net->n_record; q++) {
                int32_t proj = net->record[3 * q], pre = net->record[3 * q + 1], post = net->record[3 * q + 2];
                uint64_t o = n * net->n_record + q;
                if (proj == 2) {
                    net->syn_zbar[o] = w.z_bar_out[pre];
                    net->syn_e[o] = EPROP_REAL(fx_sub(EPROP_BITS(w.grad_out[post * n_rec + pre]),
                                                      EPROP_BITS(w.grad_out_before[q])));
                    net->syn_ebar[o] = w.z_bar_out[pre];
                }
            }
        }
        /* the delay line's last steps: their learning signals have arrived by the interval end */
        for (uint32_t t = T > D ? T - D : 0; t < T; t++) {
            recurrent_synapses(net, &w, s, t, zero_L);
        }

        /* interval end: firing-rate terms, gradients, one optimizer call per synapse (idx = s + 1) */
        for (uint32_t j = 0; j < n_rec; j++) {
            w.fr[j] = neuron_model_eprop_firing_rate_term(&w.neurons[j], &net->neuron_params[j], T);
            for (uint32_t t = 0; t < T; t++) {
                net->fr_reg[((uint64_t) s * T + t) * n_rec + j] = w.fr[j];
            }
        }
        for (uint32_t j = 0; j < n_rec; j++) {
            for (uint32_t i = 0; i < n_pre; i++) {
                if (!net->mask_hidden[j * n_pre + i]) {
                    continue;  /* no synapse (sparse projection, or the autapse) */
                }
                REAL g = synapse_dynamics_eprop_gradient(&w.traces[j * n_pre + i], w.fr[j], sp);
                synapse_dynamics_eprop_optimize(&w.hidden[j * n_pre + i], net->optimizer, g, s + 1);
            }
        }
        for (uint32_t k = 0; k < n_out; k++) {
            for (uint32_t j = 0; j < n_rec; j++) {
                if (!net->mask_out[k * n_rec + j]) {
                    continue;
                }
                fx_t g = EPROP_BITS(w.grad_out[k * n_rec + j]);
                if (sp->average_steps > 1) {
                    g = fx_div_int(g, (int32_t) sp->average_steps);
                }
                synapse_dynamics_eprop_optimize(&w.out[k * n_rec + j], net->optimizer, EPROP_REAL(g), s + 1);
            }
        }
        if (net->symmetric) {
            for (uint32_t j = 0; j < n_rec; j++) {
                for (uint32_t k = 0; k < n_out; k++) {
                    w.w_fb[j * n_out + k] = w.out[k * n_rec + j].weight;
                }
            }
        }
        for (uint32_t j = 0; j < n_rec; j++) {
            for (uint32_t i = 0; i < n_pre; i++) {
                net->snap_w_hidden[((uint64_t) s * n_rec + j) * n_pre + i] = w.hidden[j * n_pre + i].weight;
            }
            for (uint32_t k = 0; k < n_out; k++) {
                net->snap_w_fb[((uint64_t) s * n_rec + j) * n_out + k] = w.w_fb[j * n_out + k];
            }
        }
        for (uint32_t k = 0; k < n_out; k++) {
            for (uint32_t j = 0; j < n_rec; j++) {
                net->snap_w_out[((uint64_t) s * n_out + k) * n_rec + j] = w.out[k * n_rec + j].weight;
            }
        }
    }
    return 0;
}

int32_t eprop_host_fixed_op(uint32_t op, uint32_t n, const int64_t *a, const int64_t *b, int64_t *out) {
    for (uint32_t i = 0; i < n; i++) {
        fx_t x = (fx_t) a[i], y = (fx_t) b[i];
        switch (op) {
        case 0: out[i] = fx_add(x, y); break;
        case 1: out[i] = fx_sub(x, y); break;
        case 2: out[i] = fx_mul(x, y); break;
        case 3: out[i] = fx_decay(x, (fxd_t) b[i]); break;
        case 4: out[i] = fx_div(x, y); break;
        case 5: out[i] = fx_div_int(x, y); break;
        case 6: out[i] = fx_sqrt(x); break;
        case 7: out[i] = fx_exp(x); break;
        case 8: out[i] = fxd_mul((fxd_t) a[i], (fxd_t) b[i]); break;
        default: return -1;
        }
    }
    return 0;
}
