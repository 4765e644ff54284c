// Harness: simulators of a Twilio caller, an ElevenLabs ConvAI agent and Twilio's REST API, for developers, tests
// and load runs. Each runs on Transport event loops like the gateway does; per-frame paths reuse buffers.
import AudioCodecs
import AudioCore
import Foundation

/// Converting whole clips between sample rates and wire formats (setup-time helpers, allocating).
public enum AudioClip {
    /// `samples` at `rate` resampled to `targetRate`.
    public static func resample(_ samples: [Int16], from rate: Int, to targetRate: Int) throws -> [Int16] {
        guard rate != targetRate else { return samples }
        let r = try Resampler(inputRate: rate, outputRate: targetRate, quality: 5)
        var out = [Int16](repeating: 0, count: r.outputCapacity(forInput: samples.count))
        let (_, produced) = samples.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { r.process(src, into: $0) } }
        return Array(out[0..<produced])
    }

    /// PCM16 samples at `rate` as bytes of `format` (mu-law, A-law or PCM16 little-endian).
    public static func encode(_ samples: [Int16], rate: Int, as format: AudioFormat) throws -> [UInt8] {
        let s = try resample(samples, from: rate, to: format.sampleRate)
        switch format.encoding {
        case .mulaw: return MuLaw.encode(s)
        case .alaw: return ALaw.encode(s)
        case .pcm16: return s.withUnsafeBytes { Array($0) }
        case .opus: throw HarnessError("Opus clips are not supported here")
        }
    }

    /// Bytes of `format` as PCM16 samples at the format's rate.
    public static func decode(_ bytes: [UInt8], as format: AudioFormat) -> [Int16] {
        switch format.encoding {
        case .mulaw: return MuLaw.decode(bytes)
        case .alaw: return ALaw.decode(bytes)
        case .pcm16:
            return stride(from: 0, to: bytes.count - 1, by: 2).map { Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
        case .opus: return []
        }
    }

    /// A WAV file's samples, mono, at `rate`.
    public static func loadWAV(_ path: String, rate: Int) throws -> [Int16] {
        guard let data = FileManager.default.contents(atPath: path) else { throw HarnessError("cannot read \(path)") }
        var wav = try WAVAudio(parsing: [UInt8](data))
        if wav.channels > 1 {
            wav = WAVAudio(sampleRate: wav.sampleRate, samples: stride(from: 0, to: wav.samples.count, by: wav.channels).map { wav.samples[$0] })
        }
        return try resample(wav.samples, from: wav.sampleRate, to: rate)
    }

    /// Root-mean-square level of PCM16 samples.
    public static func rms(_ samples: UnsafeBufferPointer<Int16>) -> Double {
        guard !samples.isEmpty else { return 0 }
        var sum = 0.0
        for s in samples { sum += Double(s) * Double(s) }
        return (sum / Double(samples.count)).squareRoot()
    }

    /// The lag (in samples, `b` behind `a`) that maximises the normalised cross-correlation of two signals, and that
    /// correlation (-1...1). Searches lags 0...maxLag.
    public static func bestLag(_ a: [Int16], _ b: [Int16], maxLag: Int) -> (lag: Int, correlation: Double) {
        var best = (0, -2.0)
        let fa = a.map(Double.init), fb = b.map(Double.init)
        var lag = 0
        while lag <= maxLag {
            let n = min(fa.count, fb.count - lag)
            if n < 400 { break }
            var ab = 0.0, aa = 0.0, bb = 0.0
            for i in 0..<n {
                let x = fa[i], y = fb[i + lag]
                ab += x * y
                aa += x * x
                bb += y * y
            }
            let c = aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : 0
            if c > best.1 { best = (lag, c) }
            lag += lag < 1600 ? 1 : 4
        }
        return best
    }
}

/// A simulator cannot do what it was asked (bad format, unreadable file).
public struct HarnessError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
