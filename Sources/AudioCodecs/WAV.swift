// WAV (RIFF, PCM16) read and write, for fixtures, recordings and `patchbay transcode` (pure Swift, no C).

/// A PCM16 WAV file in memory: interleaved samples.
public struct WAVAudio: Sendable, Equatable {
    /// Samples per second per channel.
    public var sampleRate: Int
    /// Interleaved channels.
    public var channels: Int
    /// Interleaved 16-bit samples.
    public var samples: [Int16]

    /// Audio from samples.
    public init(sampleRate: Int, channels: Int = 1, samples: [Int16]) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.samples = samples
    }

    /// Why bytes are not a usable WAV file.
    public struct FormatError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Parses a RIFF/WAVE file with PCM 16-bit samples (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM
    /// sub-format). Chunks other than `fmt ` and `data` (LIST, fact, ...) are skipped.
    public init(parsing bytes: [UInt8]) throws(FormatError) {
        func u32(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24 }
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        func tag(_ i: Int) -> String { String(decoding: bytes[i..<i + 4], as: UTF8.self) }
        guard bytes.count >= 12, tag(0) == "RIFF", tag(8) == "WAVE" else { throw FormatError(message: "not a RIFF/WAVE file") }
        var offset = 12
        var format: (rate: Int, channels: Int)?
        var data: ArraySlice<UInt8>?
        while offset + 8 <= bytes.count {
            let id = tag(offset)
            let size = u32(offset + 4)
            let body = offset + 8
            let end = min(bytes.count, body + size)
            if id == "fmt " {
                guard size >= 16, end - body >= 16 else { throw FormatError(message: "fmt chunk too short") }
                let code = u16(body), channels = u16(body + 2), rate = u32(body + 4), bits = u16(body + 14)
                let pcm = code == 1 || (code == 0xFFFE && size >= 26 && u16(body + 24) == 1)
                guard pcm, bits == 16 else { throw FormatError(message: "only 16-bit PCM WAV is supported (format \(code), \(bits) bits)") }
                guard (1...8).contains(channels), rate > 0 else { throw FormatError(message: "bad channel count \(channels) or rate \(rate)") }
                format = (rate, channels)
            } else if id == "data" {
                data = bytes[body..<end]
            }
            offset = body + size + (size & 1)
        }
        guard let format else { throw FormatError(message: "no fmt chunk") }
        guard let data else { throw FormatError(message: "no data chunk") }
        var samples = [Int16](repeating: 0, count: data.count / 2)
        var i = data.startIndex
        for k in 0..<samples.count {
            samples[k] = Int16(bitPattern: UInt16(data[i]) | UInt16(data[i + 1]) << 8)
            i += 2
        }
        self.init(sampleRate: format.rate, channels: format.channels, samples: samples)
    }

    /// The canonical 44-byte-header PCM16 WAV file.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(44 + samples.count * 2)
        func put32(_ v: Int) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> s)) } }
        func put16(_ v: Int) { out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8)) }
        let dataBytes = samples.count * 2
        out += Array("RIFF".utf8); put32(36 + dataBytes); out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); put32(16); put16(1); put16(channels); put32(sampleRate)
        put32(sampleRate * channels * 2); put16(channels * 2); put16(16)
        out += Array("data".utf8); put32(dataBytes)
        for s in samples { put16(Int(UInt16(bitPattern: s))) }
        return out
    }
}
