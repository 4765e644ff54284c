import AudioCore
internal import COpus

/// What the Opus encoder is tuned for (RFC 6716; `OPUS_APPLICATION_*`).
public enum OpusApplication: Sendable {
    /// Speech over a network: the telephony default.
    case voip
    /// General audio (music, mixed).
    case audio

    var raw: Int32 { self == .voip ? OPUS_APPLICATION_VOIP : OPUS_APPLICATION_AUDIO }
}

/// Opus encoder settings.
public struct OpusEncoderSettings: Sendable, Equatable {
    /// 8000, 12000, 16000, 24000 or 48000.
    public var sampleRate: Int
    /// 1 or 2.
    public var channels: Int = 1
    /// The tuning.
    public var application: OpusApplication = .voip
    /// Target bits per second (6,000 to 510,000).
    public var bitrate: Int = 24_000
    /// 0 (fastest) to 10 (best); the capacity knob on a real-time path.
    public var complexity: Int = 5
    /// In-band forward error correction (lets the receiver rebuild a lost packet from the next one).
    public var inbandFEC: Bool = false
    /// Expected packet loss, percent (tunes FEC).
    public var expectedLossPercent: Int = 0
    /// Discontinuous transmission: near-empty packets during silence.
    public var dtx: Bool = false

    /// Settings for `sampleRate` with the defaults above.
    public init(sampleRate: Int) { self.sampleRate = sampleRate }
}

/// The sample rates Opus accepts.
let opusRates: Set<Int> = [8000, 12000, 16000, 24000, 48000]

func opusError(_ code: Int32, _ context: String) -> AudioCodecError {
    AudioCodecError(library: .opus, code: code, message: "\(context): \(String(cString: opus_strerror(code)))")
}

/// An Opus encoder (libopus). One per stream direction; not thread-safe (its owner's thread runs it).
public final class OpusEncoder {
    /// The settings it was built with.
    public let settings: OpusEncoderSettings
    private let encoder: OpaquePointer

    /// Creates and configures an encoder. Throws for a rate Opus does not take or a setting it refuses.
    public init(_ settings: OpusEncoderSettings) throws(AudioCodecError) {
        guard opusRates.contains(settings.sampleRate), (1...2).contains(settings.channels) else {
            throw opusError(OPUS_BAD_ARG, "sample rate \(settings.sampleRate) / \(settings.channels) channels")
        }
        var err: Int32 = 0
        guard let e = opus_encoder_create(Int32(settings.sampleRate), Int32(settings.channels), settings.application.raw, &err), err == OPUS_OK else {
            throw opusError(err, "opus_encoder_create")
        }
        for (request, value, name) in [
            (OPUS_SET_BITRATE_REQUEST, Int32(settings.bitrate), "bitrate"),
            (OPUS_SET_COMPLEXITY_REQUEST, Int32(settings.complexity), "complexity"),
            (OPUS_SET_INBAND_FEC_REQUEST, settings.inbandFEC ? 1 : 0, "inband FEC"),
            (OPUS_SET_PACKET_LOSS_PERC_REQUEST, Int32(settings.expectedLossPercent), "packet loss"),
            (OPUS_SET_DTX_REQUEST, settings.dtx ? 1 : 0, "DTX"),
        ] {
            let rc = COpus_encoder_ctl_set(e, request, value)
            if rc != OPUS_OK {
                opus_encoder_destroy(e)
                throw opusError(rc, "setting \(name) to \(value)")
            }
        }
        if settings.application == .voip { _ = COpus_encoder_ctl_set(e, OPUS_SET_SIGNAL_REQUEST, OPUS_SIGNAL_VOICE) }
        // Stored only once fully configured: a throwing init after this point would run deinit and free it twice.
        encoder = e
        self.settings = settings
    }

    deinit { opus_encoder_destroy(encoder) }

    /// The encoder's look-ahead in samples at its rate (the Ogg/Opus pre-skip derives from it, RFC 7845 §4.2).
    public var lookahead: Int {
        var value: Int32 = 0
        _ = COpus_encoder_ctl_get(encoder, OPUS_GET_LOOKAHEAD_REQUEST, &value)
        return Int(value)
    }

    /// Encodes one frame (2.5, 5, 10, 20, 40 or 60 ms of interleaved samples) into `packet`; returns the packet's
    /// length in bytes, or nil when libopus refuses (wrong frame size, buffer too small). 1,275 bytes always suffice.
    public func encode(_ pcm: UnsafeBufferPointer<Int16>, into packet: UnsafeMutableRawBufferPointer) -> Int? {
        guard let src = pcm.baseAddress, let dst = packet.baseAddress else { return nil }
        let frameSize = Int32(pcm.count / settings.channels)
        let n = opus_encode(encoder, src, frameSize, dst.assumingMemoryBound(to: UInt8.self), Int32(packet.count))
        return n < 0 ? nil : Int(n)
    }
}

/// An Opus decoder (libopus) with packet loss concealment. One per stream direction; not thread-safe.
public final class OpusDecoder {
    /// Output rate (Opus decodes any packet at any of its rates).
    public let sampleRate: Int
    /// Output channels.
    public let channels: Int
    private let decoder: OpaquePointer

    /// A decoder producing `sampleRate` Hz, `channels` channels.
    public init(sampleRate: Int, channels: Int = 1) throws(AudioCodecError) {
        guard opusRates.contains(sampleRate), (1...2).contains(channels) else {
            throw opusError(OPUS_BAD_ARG, "sample rate \(sampleRate) / \(channels) channels")
        }
        var err: Int32 = 0
        guard let d = opus_decoder_create(Int32(sampleRate), Int32(channels), &err), err == OPUS_OK else {
            throw opusError(err, "opus_decoder_create")
        }
        decoder = d
        self.sampleRate = sampleRate
        self.channels = channels
    }

    deinit { opus_decoder_destroy(decoder) }

    /// The result of decoding one packet (or concealing a missing one).
    public enum Outcome: Equatable, Sendable {
        /// This many samples per channel were written.
        case decoded(samples: Int)
        /// The packet is corrupt; nothing was written. Conceal instead, and end the stream after a run of these.
        case corrupt
    }

    /// Decodes `packet` into `pcm`. With `packet` nil, runs packet loss concealment for `pcm.count / channels`
    /// samples (one frame's worth). With `fec`, rebuilds the previous (lost) frame from this packet's FEC data.
    public func decode(_ packet: UnsafeRawBufferPointer?, into pcm: UnsafeMutableBufferPointer<Int16>, fec: Bool = false) -> Outcome {
        guard let dst = pcm.baseAddress else { return .corrupt }
        let frameSize = Int32(pcm.count / channels)
        let data = packet?.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let n = opus_decode(decoder, data, Int32(packet?.count ?? 0), dst, frameSize, fec ? 1 : 0)
        return n < 0 ? .corrupt : .decoded(samples: Int(n))
    }

    /// libopus's version string.
    public static var libraryVersion: String { String(cString: opus_get_version_string()) }
}
