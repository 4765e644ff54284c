// AudioCodecs: Opus, the speexdsp resampler, Ogg/Opus and WAV. The only importer of COpus, CSpeexDSP and COgg.
// Owns every encoder/decoder/resampler handle; exposes no C type.
internal import COpus
internal import CSpeexDSP
internal import COgg
