import Foundation
import Testing
@testable import AudioCodecs

/// Test signals: a sum of sines inside the telephone band (300-3,400 Hz), deterministic.
enum Signal {
    static func tones(rate: Int, milliseconds: Int, frequencies: [Double] = [350, 820, 1_470, 2_230, 3_050], amplitude: Double = 4_000) -> [Int16] {
        let n = rate * milliseconds / 1000
        return (0..<n).map { i in
            let t = Double(i) / Double(rate)
            let v = frequencies.reduce(0.0) { $0 + sin(2 * .pi * $1 * t) } * amplitude / Double(frequencies.count) * 2
            return Int16(max(-32768, min(32767, v.rounded())))
        }
    }

    /// Signal-to-noise ratio (dB) of `test` against `reference`, after shifting `test` by the best lag in 0..<maxLag,
    /// skipping `skip` samples at each end (filter warm-up).
    static func snr(reference: [Int16], test: [Int16], maxLag: Int, skip: Int) -> (db: Double, lag: Int) {
        var best = (db: -Double.infinity, lag: 0)
        for lag in 0..<maxLag {
            var signal = 0.0, noise = 0.0
            var i = skip
            while i + lag < test.count - skip && i < reference.count - skip {
                let r = Double(reference[i]), d = Double(test[i + lag]) - r
                signal += r * r
                noise += d * d
                i += 1
            }
            let db = 10 * log10(signal / max(noise, 1e-9))
            if db > best.db { best = (db, lag) }
        }
        return best
    }
}

func resample(_ r: Resampler, _ input: [Int16], frameMillis: Int = 20) -> [Int16] {
    let frame = r.inputRate * frameMillis / 1000
    var out: [Int16] = []
    var buffer = [Int16](repeating: 0, count: r.outputCapacity(forInput: frame))
    var i = 0
    while i < input.count {
        let chunk = Array(input[i..<min(i + frame, input.count)])
        let (consumed, produced) = chunk.withUnsafeBufferPointer { src in buffer.withUnsafeMutableBufferPointer { r.process(src, into: $0) } }
        #expect(consumed == chunk.count, "a resampler never holds input back")
        out.append(contentsOf: buffer[0..<produced])
        i += frame
    }
    return out
}

@Suite("Resampler (speexdsp)")
struct ResamplerTests {
    @Test("20 ms in gives 20 ms out, exactly over time, for every rate pair on the real-time path", arguments: [
        (8000, 16000), (16000, 8000), (8000, 22050), (22050, 8000), (24000, 8000), (8000, 24000), (44100, 16000), (48000, 16000), (16000, 48000),
    ])
    func frameSizes(_ rates: (Int, Int)) throws {
        let r = try Resampler(inputRate: rates.0, outputRate: rates.1, quality: 3)
        let input = Signal.tones(rate: rates.0, milliseconds: 1000)
        let out = resample(r, input)
        // One second in: one second out, give or take the fractional sample carried between calls.
        #expect(abs(out.count - rates.1) <= 1, "\(out.count) samples for \(rates.1)")
    }

    @Test("Streaming frame by frame gives the very same samples as one call on the whole signal (no edges)", arguments: [3, 4, 5])
    func streamingMatchesOneShot(_ quality: Int) throws {
        let input = Signal.tones(rate: 8000, milliseconds: 2000)
        let streamed = resample(try Resampler(inputRate: 8000, outputRate: 16000, quality: quality), input)
        let whole = try Resampler(inputRate: 8000, outputRate: 16000, quality: quality)
        var out = [Int16](repeating: 0, count: whole.outputCapacity(forInput: input.count))
        let (_, produced) = input.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { whole.process(src, into: $0) } }
        #expect(Array(out[0..<produced]) == streamed)
    }

    @Test("8 -> 16 -> 8 kHz keeps the telephone band (SNR over 30 dB after the reported delay)", arguments: [3, 4, 5])
    func roundTrip(_ quality: Int) throws {
        let input = Signal.tones(rate: 8000, milliseconds: 2000)
        let up = try Resampler(inputRate: 8000, outputRate: 16000, quality: quality)
        let down = try Resampler(inputRate: 16000, outputRate: 8000, quality: quality)
        let back = resample(down, resample(up, input))
        let (db, lag) = Signal.snr(reference: input, test: back, maxLag: 200, skip: 400)
        #expect(db > 30, "SNR \(db) dB at lag \(lag)")
        // The measured lag is the two filters' delays; each is what the resampler reports.
        let reported = up.inputLatency + down.outputLatency
        #expect(abs(lag - reported) <= 2, "lag \(lag) vs reported \(reported)")
    }

    @Test("The filter delay is a few milliseconds, never a frame", arguments: [3, 4, 5])
    func latency(_ quality: Int) throws {
        for (a, b) in [(8000, 16000), (16000, 8000), (24000, 8000)] {
            let r = try Resampler(inputRate: a, outputRate: b, quality: quality)
            #expect(r.latencyMillis > 0 && r.latencyMillis < 6, "\(a)->\(b) q\(quality): \(r.latencyMillis) ms")
        }
    }

    @Test("Bad rates or quality are refused with an error")
    func refused() {
        #expect(throws: AudioCodecError.self) { try Resampler(inputRate: 0, outputRate: 8000) }
        #expect(throws: AudioCodecError.self) { try Resampler(inputRate: 8000, outputRate: 16000, quality: 11) }
    }
}
