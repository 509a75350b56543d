/*! \file
 *  \brief Test harness (not part of the kernel): runs eprop_host_original_run on an ARM968 build
 *         under an emulator, with the network read from and the recordings written to files
 *         through newlib's semihosting (rdimon).  pynn_ext/spinnaker/arm_run.py writes the input
 *         and reads the output; the file format is a sequence of [uint32 byte count, bytes] blocks
 *         in the order of the fields below.
 *
 *  usage: eprop_arm_run IN OUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../eprop_host_original.h"

static void *read_block(FILE *f, uint32_t *bytes) {
    uint32_t n = 0;
    if (fread(&n, 4, 1, f) != 1) {
        return NULL;
    }
    void *p = malloc(n ? n : 8);
    if (p == NULL || (n && fread(p, 1, n, f) != n)) {
        return NULL;
    }
    if (bytes) {
        *bytes = n;
    }
    return p;
}

static int write_block(FILE *f, const void *p, uint32_t n) {
    return fwrite(&n, 4, 1, f) == 1 && fwrite(p, 1, n, f) == n ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (in == NULL) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    uint32_t *sizes = read_block(in, NULL);  /* n_in n_rec n_out T n_sequences T_L n_cores n_record symmetric
                                                learning_delay */
    if (sizes == NULL) {
        return 3;
    }
    eprop_host_network_t net;
    memset(&net, 0, sizeof(net));
    net.n_in = sizes[0]; net.n_rec = sizes[1]; net.n_out = sizes[2]; net.T = sizes[3];
    net.n_sequences = sizes[4]; net.T_L = sizes[5]; net.n_cores = sizes[6]; net.n_record = sizes[7];
    net.symmetric = sizes[8];
    net.learning_delay = sizes[9];
    const void **inputs[] = {
        (const void **) &net.core_start, (const void **) &net.neuron_params, (const void **) &net.readout_params,
        (const void **) &net.synapse_params, (const void **) &net.optimizer, (const void **) &net.inputs,
        (const void **) &net.zero_L, (const void **) &net.target, (const void **) &net.w_hidden,
        (const void **) &net.w_out, (const void **) &net.w_fb, (const void **) &net.record,
        (const void **) &net.mask_hidden, (const void **) &net.mask_out};
    for (unsigned i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        if ((*inputs[i] = read_block(in, NULL)) == NULL) {
            return 3;
        }
    }
    fclose(in);
    uint32_t N = net.T * net.n_sequences, S = net.n_sequences, n_rec = net.n_rec, n_out = net.n_out;
    uint32_t n_pre = net.n_in + n_rec, n_rc = net.n_record ? net.n_record : 1;
    struct { void **field; uint32_t bytes; } outputs[] = {
        {(void **) &net.v, 4 * N * n_rec}, {(void **) &net.psi, 4 * N * n_rec},
        {(void **) &net.adaptation, 4 * N * n_rec}, {(void **) &net.threshold, 4 * N * n_rec},
        {(void **) &net.learning_signal, 4 * N * n_rec}, {(void **) &net.fr_reg, 4 * N * n_rec},
        {(void **) &net.z, N * n_rec}, {(void **) &net.readout_v, 4 * N * n_out},
        {(void **) &net.signal, 4 * N * n_out}, {(void **) &net.error, 4 * N * n_out},
        {(void **) &net.syn_zbar, 4 * N * n_rc}, {(void **) &net.syn_e, 4 * N * n_rc},
        {(void **) &net.syn_ebar, 4 * N * n_rc}, {(void **) &net.snap_w_hidden, 4 * S * n_rec * n_pre},
        {(void **) &net.snap_w_out, 4 * S * n_out * n_rec}, {(void **) &net.snap_w_fb, 4 * S * n_rec * n_out}};
    const unsigned n_outputs = sizeof(outputs) / sizeof(outputs[0]);
    for (unsigned i = 0; i < n_outputs; i++) {
        if ((*outputs[i].field = calloc(1, outputs[i].bytes ? outputs[i].bytes : 8)) == NULL) {
            return 4;
        }
    }
    net.workspace = calloc(1, eprop_host_workspace_bytes(net.n_in, n_rec, n_out, net.n_cores, net.n_record) + 8);
    if (net.workspace == NULL) {
        return 4;
    }
    int32_t status = eprop_host_original_run(&net);
    FILE *out = fopen(argv[2], "wb");
    if (out == NULL || status != 0) {
        return 5;
    }
    for (unsigned i = 0; i < n_outputs; i++) {
        if (write_block(out, *outputs[i].field, outputs[i].bytes) != 0) {
            return 6;
        }
    }
    fclose(out);
    return 0;
}
