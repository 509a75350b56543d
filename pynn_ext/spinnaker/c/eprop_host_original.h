/*! \file
 *  \brief The host driver of the original-family kernel: a whole scenario network (inputs,
 *         recurrent cores, readouts, learning signal, optimizer) stepped in aligned time
 *         (docs/model.rst §0) with the kernel functions the ARM cores run.
 *
 *  On SpiNNaker the same steps are spread over cores and multicast packets: a recurrent core per
 *  population slice, the readouts on their own core, spikes and error payloads as packets.  Here
 *  one call runs everything in one address space, so that the fixed-point kernel can be compared
 *  with the float64 reference and with the NumPy emulation (pynn_ext/spinnaker/emulation.py).
 *  Freestanding: no libc, all memory comes from the caller (the workspace).
 */
#ifndef EPROP_HOST_ORIGINAL_H
#define EPROP_HOST_ORIGINAL_H

#include "eprop_fixed.h"
#include "neuron_model_eprop_original_impl.h"
#include "synapse_dynamics_eprop_original_impl.h"

/*! Longest learning-signal delay the driver's history rings hold */
#define EPROP_MAX_LEARNING_DELAY 4

/*! Everything one run needs, laid out by the caller (mirrored by ctypes in pynn_ext/spinnaker/host.py).
 *  Arrays are row-major; n_pre = n_in + n_rec (inputs first, then the recurrent neurons).  Sparse
 *  projections are dense arrays with weight 0 and mask 0 where there is no synapse (a core on the
 *  board keeps only the existing synapses, with their presynaptic index). */
typedef struct eprop_host_network_t {
    uint32_t n_in, n_rec, n_out;
    uint32_t T;                 /*!< steps per update interval (sequence) */
    uint32_t n_sequences;
    uint32_t T_L;               /*!< learning window: the last T_L steps of a sequence */
    uint32_t n_cores;           /*!< recurrent cores (one per population) */
    uint32_t n_record;          /*!< recorded synapses */
    uint32_t symmetric;         /*!< 1: B follows W_out^T after every update (docs/model.rst §3b) */
    uint32_t learning_delay;    /*!< steps by which the recurrent synapses integrate late (0 ..
                                     EPROP_MAX_LEARNING_DELAY): on a board the readouts' error payloads of
                                     step t arrive at t + 1 or t + 2, so the cores keep the arrivals and psi
                                     of the last steps and integrate step t when L_t is there */
    const uint32_t *core_start;                  /*!< n_cores + 1 neuron offsets */
    const neuron_params_t *neuron_params;        /*!< n_rec */
    const readout_params_t *readout_params;      /*!< 1, shared by the readouts */
    const eprop_synapse_params_t *synapse_params;/*!< 1 */
    const eprop_optimizer_params_t *optimizer;   /*!< 1, shared by all plastic projections */
    const uint8_t *inputs;      /*!< n_steps x n_in: input arrivals */
    const uint8_t *zero_L;      /*!< n_sequences x n_pre: rows that integrate L = 0 in the last step */
    const REAL *target;         /*!< n_steps x n_out */
    const REAL *w_hidden;       /*!< n_rec x n_pre initial weights */
    const REAL *w_out;          /*!< n_out x n_rec initial weights */
    const REAL *w_fb;           /*!< n_rec x n_out initial feedback weights B */
    const int32_t *record;      /*!< n_record x 3: projection (0 in, 1 rec, 2 out), pre, post */
    const uint8_t *mask_hidden; /*!< n_rec x n_pre: 1 where a synapse exists (0 on the diagonal: no autapses) */
    const uint8_t *mask_out;    /*!< n_out x n_rec: 1 where a synapse exists */
    /* outputs: per step */
    REAL *v, *psi, *adaptation, *threshold, *learning_signal, *fr_reg;   /*!< n_steps x n_rec */
    uint8_t *z;                                                          /*!< n_steps x n_rec */
    REAL *readout_v, *signal, *error;                                    /*!< n_steps x n_out */
    REAL *syn_zbar, *syn_e, *syn_ebar;                                   /*!< n_steps x n_record */
    /* outputs: weights at the end of every sequence */
    REAL *snap_w_hidden, *snap_w_out, *snap_w_fb;
    /* work memory of eprop_host_workspace_bytes() bytes, 8-byte aligned */
    void *workspace;
} eprop_host_network_t;

/*! Bytes of work memory eprop_host_original_run needs */
uint32_t eprop_host_workspace_bytes(uint32_t n_in, uint32_t n_rec, uint32_t n_out, uint32_t n_cores,
                                    uint32_t n_record);

/*! Run all sequences; returns 0 (or -1 for an inconsistent network) */
int32_t eprop_host_original_run(const eprop_host_network_t *net);

/*! sizeof of the shared structs, by code (0 neuron_params_t, 1 neuron_t, 2 readout_params_t,
 *  3 readout_t, 4 eprop_syn_trace_t, 5 eprop_plastic_synapse_t, 6 eprop_optimizer_params_t,
 *  7 eprop_synapse_params_t, 8 eprop_host_network_t), for the layout checks of the Python side */
uint32_t eprop_host_sizeof(uint32_t which);

/*! The arithmetic of eprop_fixed.h element-wise, for the tests that compare it with
 *  pynn_ext/spinnaker/fixed_point.py: out[i] = op(a[i], b[i]) with op 0 add, 1 sub, 2 mul, 3 decay
 *  (b as u0.32 bits), 4 div, 5 div_int, 6 sqrt (a), 7 exp (a), 8 fxd_mul; returns -1 for an unknown op */
int32_t eprop_host_fixed_op(uint32_t op, uint32_t n, const int64_t *a, const int64_t *b, int64_t *out);

#endif /* EPROP_HOST_ORIGINAL_H */
