// AudioCore: pure audio value types (formats, G.711, rings, jitter buffer).
// Runs on whichever thread owns the value; never imports C, reads a clock, does I/O or allocates per frame.

/// How samples are coded on the wire.
public enum AudioEncoding: String, Sendable, Hashable, CaseIterable {
    /// ITU-T G.711 mu-law, one byte a sample.
    case mulaw
    /// ITU-T G.711 A-law, one byte a sample.
    case alaw
    /// Signed 16-bit little-endian linear PCM.
    case pcm16
    /// Opus (RFC 6716) packets, one per frame.
    case opus
}

/// A stream's audio format: encoding, sample rate and channel count, with a frame duration (20 ms by default).
public struct AudioFormat: Sendable, Hashable, CustomStringConvertible {
    /// The sample coding.
    public var encoding: AudioEncoding
    /// Samples per second per channel.
    public var sampleRate: Int
    /// Interleaved channels (1 on every telephony path).
    public var channels: Int
    /// Frame duration in milliseconds (20 on every real-time path).
    public var frameMillis: Int

    /// A format; `frameMillis` defaults to 20 ms.
    public init(encoding: AudioEncoding, sampleRate: Int, channels: Int = 1, frameMillis: Int = 20) {
        self.encoding = encoding
        self.sampleRate = sampleRate
        self.channels = channels
        self.frameMillis = frameMillis
    }

    /// Twilio Media Streams audio: mu-law, 8 kHz, mono (shared/protocols/twilio-media-streams.md, "start").
    public static let twilioMuLaw = AudioFormat(encoding: .mulaw, sampleRate: 8000)

    /// Sample rates ElevenLabs names for PCM (shared/protocols/elevenlabs-convai.md, audio formats).
    public static let elevenLabsPCMRates: Set<Int> = [8000, 16000, 22050, 24000, 32000, 44100, 48000]

    /// Parses an ElevenLabs format name (`ulaw_8000`, `alaw_8000`, `pcm_16000`, `pcm_22050`, `pcm_24000`,
    /// `pcm_44100`, `pcm_48000`...): `<codec>_<rate>`, as the ElevenLabs JS client parses it. Returns nil for
    /// anything else (mp3, opus bitrate variants, a malformed rate) so the caller never guesses a format.
    public init?(elevenLabsName name: String) {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, let rate = Int(parts[1]), String(rate) == parts[1] else { return nil }
        switch parts[0] {
        case "ulaw" where rate == 8000: self.init(encoding: .mulaw, sampleRate: 8000)
        case "alaw" where rate == 8000: self.init(encoding: .alaw, sampleRate: 8000)
        case "pcm" where Self.elevenLabsPCMRates.contains(rate): self.init(encoding: .pcm16, sampleRate: rate)
        default: return nil
        }
    }

    /// The ElevenLabs name of this format, when it has one (`ulaw_8000`, `pcm_16000`...).
    public var elevenLabsName: String? {
        guard channels == 1 else { return nil }
        switch encoding {
        case .mulaw where sampleRate == 8000: return "ulaw_8000"
        case .alaw where sampleRate == 8000: return "alaw_8000"
        case .pcm16 where Self.elevenLabsPCMRates.contains(sampleRate): return "pcm_\(sampleRate)"
        default: return nil
        }
    }

    /// Parses Twilio's `start.mediaFormat` (`audio/x-mulaw`, 8000, 1). Also accepts `audio/x-alaw` and
    /// `audio/l16` for other carriers that reuse the message shape. Returns nil for anything else.
    public init?(twilioEncoding encoding: String, sampleRate: Int, channels: Int) {
        guard sampleRate > 0, channels >= 1, channels <= 2 else { return nil }
        switch encoding.lowercased() {
        case "audio/x-mulaw", "audio/pcmu": self.init(encoding: .mulaw, sampleRate: sampleRate, channels: channels)
        case "audio/x-alaw", "audio/pcma": self.init(encoding: .alaw, sampleRate: sampleRate, channels: channels)
        case "audio/l16": self.init(encoding: .pcm16, sampleRate: sampleRate, channels: channels)
        default: return nil
        }
    }

    /// Samples per channel in one frame (160 for 20 ms at 8 kHz; 441 at 22.05 kHz).
    public var samplesPerFrame: Int { sampleRate * frameMillis / 1000 }

    /// Bytes a sample takes on the wire, per channel; nil for Opus (variable).
    public var bytesPerSample: Int? {
        switch encoding {
        case .mulaw, .alaw: return 1
        case .pcm16: return 2
        case .opus: return nil
        }
    }

    /// Bytes in one frame for constant-rate encodings; nil for Opus.
    public var bytesPerFrame: Int? { bytesPerSample.map { $0 * samplesPerFrame * channels } }

    public var description: String {
        "\(encoding.rawValue)/\(sampleRate)Hz/\(channels)ch/\(frameMillis)ms"
    }
}
