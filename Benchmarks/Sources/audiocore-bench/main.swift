// AudioCore micro-benchmarks: nanoseconds and heap allocations per 20 ms frame (release build, BenchKit).
//   cd Benchmarks && swift build -c release --product audiocore-bench && .build/release/audiocore-bench
// Buffers are allocated once, as a call's would be; they are `let` pointers so the timed closure pays no
// exclusivity checks of its own, only the codec's work.
import AudioCodecs
import AudioCore
import BenchKit
import Foundation

let samples = 160 // 20 ms at 8 kHz
let pcm = UnsafeMutableBufferPointer<Int16>.allocate(capacity: samples)
for i in 0..<samples { pcm[i] = Int16(truncatingIfNeeded: i &* 397 &- 30000) }
let codes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: samples)
codes.initialize(repeating: 0)
let decoded = UnsafeMutableBufferPointer<Int16>.allocate(capacity: samples)
decoded.initialize(repeating: 0)
let source = UnsafeBufferPointer(pcm)
let codesIn = UnsafeBufferPointer(codes)

// Jitter buffer: one push and one pull per 20 ms frame, steady state, 160-byte mu-law payloads.
let jitter = JitterBuffer(JitterBufferConfiguration())
let jbPayload = UnsafeRawBufferPointer(codes)
let jbOut = UnsafeMutableRawBufferPointer.allocate(byteCount: 1500, alignment: 8)
final class Clock { var seq: UInt16 = 0; var now: Int64 = 0 }
let clock = Clock()
let concealer = PCMConcealer(frameSamples: 160)
concealer.received(source)

let results = [
    measure("mu-law encode, 160-sample frame", iterations: 200_000) { _ = MuLaw.encode(source, into: codes) },
    measure("mu-law decode, 160-sample frame", iterations: 200_000) { _ = MuLaw.decode(codesIn, into: decoded) },
    measure("A-law encode, 160-sample frame", iterations: 200_000) { _ = ALaw.encode(source, into: codes) },
    measure("A-law decode, 160-sample frame", iterations: 200_000) { _ = ALaw.decode(codesIn, into: decoded) },
    measure("jitter buffer push + pull, one frame", iterations: 200_000) {
        _ = jitter.push(sequence: clock.seq, timestamp: UInt32(clock.seq) &* 160, payload: jbPayload, arrivalMillis: clock.now)
        _ = jitter.pull(nowMillis: clock.now + 5, into: jbOut)
        clock.seq &+= 1
        clock.now += 20
    },
    measure("PCM concealment, one frame", iterations: 200_000) { concealer.conceal(into: decoded) },
]
// Resampling and Opus (AudioCodecs), 20 ms frames.
let tone8k = UnsafeMutableBufferPointer<Int16>.allocate(capacity: 160)
for i in 0..<160 { tone8k[i] = Int16(8000 * sin(Double(i) * 2 * Double.pi * 440 / 8000)) }
let tone16k = UnsafeMutableBufferPointer<Int16>.allocate(capacity: 320)
for i in 0..<320 { tone16k[i] = Int16(8000 * sin(Double(i) * 2 * Double.pi * 440 / 16000)) }
let out16k = UnsafeMutableBufferPointer<Int16>.allocate(capacity: 400)
let out8k = UnsafeMutableBufferPointer<Int16>.allocate(capacity: 200)
let packet = UnsafeMutableRawBufferPointer.allocate(byteCount: 1275, alignment: 8)
var codecResults: [MicroResult] = []
for quality in [3, 5] {
    let up = try Resampler(inputRate: 8000, outputRate: 16000, quality: quality)
    let down = try Resampler(inputRate: 16000, outputRate: 8000, quality: quality)
    codecResults.append(measure("resample 8 -> 16 kHz, quality \(quality)", iterations: 100_000) { _ = up.process(UnsafeBufferPointer(tone8k), into: out16k) })
    codecResults.append(measure("resample 16 -> 8 kHz, quality \(quality)", iterations: 100_000) { _ = down.process(UnsafeBufferPointer(tone16k), into: out8k) })
}
for complexity in [5, 10] {
    var settings = OpusEncoderSettings(sampleRate: 16000)
    settings.complexity = complexity
    let encoder = try OpusEncoder(settings)
    codecResults.append(measure("Opus encode 16 kHz 24 kbit/s, complexity \(complexity)", iterations: 5_000) { _ = encoder.encode(UnsafeBufferPointer(tone16k), into: packet) })
}
let encoder = try OpusEncoder(OpusEncoderSettings(sampleRate: 16000))
let packetLength = encoder.encode(UnsafeBufferPointer(tone16k), into: packet) ?? 0
let decoder = try OpusDecoder(sampleRate: 16000)
let encoded = UnsafeRawBufferPointer(rebasing: packet[0..<packetLength])
let toAgent = try TranscodePipeline(from: .twilioMuLaw, to: AudioFormat(encoding: .pcm16, sampleRate: 16000))
let toCaller = try TranscodePipeline(from: AudioFormat(encoding: .pcm16, sampleRate: 16000), to: .twilioMuLaw)
let pcm16Frame = UnsafeRawBufferPointer(UnsafeBufferPointer(tone16k))
codecResults.append(measure("pipeline mu-law 8 kHz -> PCM16 16 kHz (q4)", iterations: 100_000) { _ = toAgent.process(UnsafeRawBufferPointer(codesIn)) })
codecResults.append(measure("pipeline PCM16 16 kHz -> mu-law 8 kHz (q4)", iterations: 100_000) { _ = toCaller.process(pcm16Frame) })
codecResults.append(measure("Opus decode 16 kHz", iterations: 20_000) { _ = decoder.decode(encoded, into: out16k.extracting(0..<320)) })
codecResults.append(measure("Opus concealment (no packet) 16 kHz", iterations: 20_000) { _ = decoder.decode(nil, into: out16k.extracting(0..<320)) })

// A 30-second 16 kHz voice note (the Spanish speech fixture, repeated) to Ogg/Opus at complexity 10.
let fixture = try WAVAudio(parsing: [UInt8](try Data(contentsOf: URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures/speech/es_16000.wav"))))
var note: [Int16] = []
while note.count < 16000 * 30 { note += fixture.samples }
let voiceNote = WAVAudio(sampleRate: 16000, samples: Array(note.prefix(16000 * 30)))
var noteTimes: [Double] = []
for _ in 0..<5 {
    let t0 = monotonicNanos()
    _ = try OggOpusWriter.encode(voiceNote, bitrate: 24_000, complexity: 10)
    noteTimes.append(Double(monotonicNanos() - t0) / 1e9)
}
noteTimes.sort()

printTable(results, title: "AudioCore per-frame costs")
printTable(codecResults, title: "AudioCodecs per-frame costs")
print("30 s 16 kHz voice note to Ogg/Opus, complexity 10: median \(format2(noteTimes[2])) s of 5 (\(noteTimes.map(format2).joined(separator: ", ")))")
print("checksum \(decoded.reduce(0) { $0 &+ Int($1) } &+ codes.reduce(0) { $0 &+ Int($1) })") // keeps the work observable
