// COpus: libopus for Swift.
// opus_encoder_ctl / opus_decoder_ctl are variadic: typed helpers taking the request constant.
#ifndef COPUS_SHIM_H
#define COPUS_SHIM_H
#include <opus.h>

static inline int COpus_encoder_ctl_set(OpusEncoder *e, int request, opus_int32 value) { return opus_encoder_ctl(e, request, value); }
static inline int COpus_encoder_ctl_get(OpusEncoder *e, int request, opus_int32 *value) { return opus_encoder_ctl(e, request, value); }
static inline int COpus_decoder_ctl_set(OpusDecoder *d, int request, opus_int32 value) { return opus_decoder_ctl(d, request, value); }
static inline int COpus_decoder_ctl_get(OpusDecoder *d, int request, opus_int32 *value) { return opus_decoder_ctl(d, request, value); }

#endif
