import Foundation
import Testing
@testable import AudioCodecs

func opusRoundTrip(_ settings: OpusEncoderSettings, _ input: [Int16], lose: Set<Int> = []) throws -> (decoded: [Int16], packets: [Int], outcomes: [OpusDecoder.Outcome]) {
    let encoder = try OpusEncoder(settings)
    let decoder = try OpusDecoder(sampleRate: settings.sampleRate)
    let frame = settings.sampleRate / 50
    var packet = [UInt8](repeating: 0, count: 1275)
    var pcm = [Int16](repeating: 0, count: frame)
    var decoded: [Int16] = [], sizes: [Int] = [], outcomes: [OpusDecoder.Outcome] = []
    var index = 0
    var start = 0
    while start + frame <= input.count {
        let n = try #require(input[start..<start + frame].withUnsafeBufferPointer { src in packet.withUnsafeMutableBytes { encoder.encode(src, into: $0) } })
        sizes.append(n)
        let outcome = lose.contains(index)
            ? pcm.withUnsafeMutableBufferPointer { decoder.decode(nil, into: $0) }
            : packet.withUnsafeBytes { raw in pcm.withUnsafeMutableBufferPointer { decoder.decode(UnsafeRawBufferPointer(rebasing: raw[0..<n]), into: $0) } }
        outcomes.append(outcome)
        decoded.append(contentsOf: pcm)
        start += frame
        index += 1
    }
    return (decoded, sizes, outcomes)
}

@Suite("Opus (libopus)")
struct OpusTests {
    @Test("16 kHz VoIP at 24 kbit/s: packets near the bitrate, the decoded signal follows the source", arguments: [5, 10])
    func roundTrip(_ complexity: Int) throws {
        var settings = OpusEncoderSettings(sampleRate: 16000)
        settings.bitrate = 24_000
        settings.complexity = complexity
        let input = Signal.tones(rate: 16000, milliseconds: 2000)
        let r = try opusRoundTrip(settings, input)
        let averageBits = Double(r.packets.reduce(0, +) * 8) / 2.0
        #expect(averageBits > 12_000 && averageBits < 36_000, "\(averageBits) bit/s")
        #expect(r.outcomes.allSatisfy { $0 == .decoded(samples: 320) })
        let lookahead = try OpusEncoder(settings).lookahead
        let (db, lag) = Signal.snr(reference: input, test: r.decoded, maxLag: lookahead + 40, skip: 1600)
        #expect(db > 10, "waveform SNR \(db) dB at lag \(lag) (lookahead \(lookahead))")
        #expect(abs(lag - lookahead) <= 8)
    }

    @Test("Lost packets are concealed with a full frame, and the stream recovers", arguments: [false, true])
    func concealment(_ fec: Bool) throws {
        var settings = OpusEncoderSettings(sampleRate: 16000)
        settings.inbandFEC = fec
        settings.expectedLossPercent = fec ? 10 : 0
        let input = Signal.tones(rate: 16000, milliseconds: 1000)
        let r = try opusRoundTrip(settings, input, lose: [10, 11, 30])
        #expect(r.outcomes.count == 50)
        #expect(r.outcomes.allSatisfy { $0 == .decoded(samples: 320) })
        #expect(r.decoded.count == 16000)
        let tail = Array(r.decoded[12000...]) // well after the last loss
        #expect(tail.map { abs(Int($0)) }.max()! > 1000, "audio resumes after concealment")
    }

    @Test("Every rate Opus allows encodes and decodes one 20 ms frame", arguments: [8000, 12000, 16000, 24000, 48000])
    func rates(_ rate: Int) throws {
        let r = try opusRoundTrip(OpusEncoderSettings(sampleRate: rate), Signal.tones(rate: rate, milliseconds: 100))
        #expect(r.outcomes.allSatisfy { $0 == .decoded(samples: rate / 50) })
    }

    @Test("A corrupt packet is reported, not crashed on; bad settings throw")
    func refusals() throws {
        let decoder = try OpusDecoder(sampleRate: 16000)
        var pcm = [Int16](repeating: 0, count: 320)
        let garbage: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x00]
        let outcome = garbage.withUnsafeBytes { raw in pcm.withUnsafeMutableBufferPointer { decoder.decode(raw, into: $0) } }
        #expect(outcome == .corrupt)
        #expect(throws: AudioCodecError.self) { try OpusEncoder(OpusEncoderSettings(sampleRate: 44100)) }
        var bad = OpusEncoderSettings(sampleRate: 16000)
        bad.complexity = 42
        #expect(throws: AudioCodecError.self) { try OpusEncoder(bad) }
        #expect(throws: AudioCodecError.self) { try OpusDecoder(sampleRate: 22050) }
    }
}
