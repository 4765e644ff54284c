import AudioCore
import Foundation
import Testing
import TestSupport
@testable import AudioCodecs

func runPipeline(_ p: TranscodePipeline, frames: [[UInt8]]) -> [[UInt8]] {
    frames.map { f in f.withUnsafeBytes { Array(p.process($0)) } }
}

@Suite("Transcoding pipeline and patchbay transcode")
struct PipelineTests {
    static let twilio = AudioFormat.twilioMuLaw

    @Test("Identical formats pass through without a copy")
    func passThrough() throws {
        let p = try TranscodePipeline(from: Self.twilio, to: Self.twilio)
        #expect(p.isPassThrough)
        let frame = [UInt8](repeating: 0x55, count: 160)
        frame.withUnsafeBytes { raw in #expect(p.process(raw).baseAddress == raw.baseAddress) }
    }

    struct Path: Sendable, CustomTestStringConvertible {
        var from: AudioFormat
        var to: AudioFormat
        var testDescription: String { "\(from) -> \(to)" }
    }

    @Test("Each direction turns 20 ms in into 20 ms out", arguments: [
        Path(from: .twilioMuLaw, to: AudioFormat(encoding: .pcm16, sampleRate: 16000)),
        Path(from: AudioFormat(encoding: .pcm16, sampleRate: 24000), to: .twilioMuLaw),
        Path(from: AudioFormat(encoding: .pcm16, sampleRate: 16000), to: .twilioMuLaw),
        Path(from: .twilioMuLaw, to: AudioFormat(encoding: .alaw, sampleRate: 8000)),
        Path(from: AudioFormat(encoding: .pcm16, sampleRate: 22050), to: .twilioMuLaw),
    ])
    func frameSizes(_ path: Path) throws {
        let p = try TranscodePipeline(from: path.from, to: path.to)
        let inBytes = path.from.bytesPerFrame!
        let frames = (0..<50).map { _ in [UInt8](repeating: path.from.encoding == .mulaw ? 0xFF : 0, count: inBytes) }
        let out = runPipeline(p, frames: frames)
        let total = out.reduce(0) { $0 + $1.count }
        let expected = path.to.bytesPerFrame! * 50
        #expect(abs(total - expected) <= path.to.bytesPerSample!, "\(total) vs \(expected)")
    }

    @Test("Twilio mu-law -> PCM16 16 kHz -> mu-law keeps the speech (after the filters' delay)")
    func roundTrip() throws {
        let speech = try Speech.wav("es_8000").samples
        let codes = MuLaw.encode(speech)
        let up = try TranscodePipeline(from: Self.twilio, to: AudioFormat(encoding: .pcm16, sampleRate: 16000))
        let down = try TranscodePipeline(from: AudioFormat(encoding: .pcm16, sampleRate: 16000), to: Self.twilio)
        let frames = stride(from: 0, to: codes.count - 160, by: 160).map { Array(codes[$0..<$0 + 160]) }
        let back = runPipeline(down, frames: runPipeline(up, frames: frames)).flatMap { $0 }
        let reference = MuLaw.decode(Array(codes.prefix(back.count)))
        let (db, _) = Signal.snr(reference: reference, test: MuLaw.decode(back), maxLag: 200, skip: 400)
        #expect(db > 15, "round-trip SNR \(db) dB")
    }

    @Test("PCM16 16 kHz -> Opus -> PCM16: packets out, audio back")
    func opus() throws {
        let wide = AudioFormat(encoding: .pcm16, sampleRate: 16000)
        let enc = try TranscodePipeline(from: wide, to: AudioFormat(encoding: .opus, sampleRate: 16000))
        let dec = try TranscodePipeline(from: AudioFormat(encoding: .opus, sampleRate: 16000), to: wide)
        let speech = try Speech.wav("en_16000").samples
        let frames = stride(from: 0, to: speech.count - 320, by: 320).map { i in speech[i..<i + 320].withUnsafeBytes { Array($0) } }
        let packets = runPipeline(enc, frames: frames)
        #expect(packets.allSatisfy { !$0.isEmpty && $0.count < 200 })
        let pcm = runPipeline(dec, frames: packets)
        #expect(pcm.allSatisfy { $0.count == 640 })
    }

    @Test("patchbay transcode: WAV to a voice note opusinfo accepts, back to WAV; bad input exits 1 with a message")
    func commandLine() async throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/patchbay").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the patchbay binary first")
        let ogg = Speech.temporary(".ogg"), wav = Speech.temporary(".wav"), bad = Speech.temporary(".ogg")
        defer { for p in [ogg, wav, bad] { try? FileManager.default.removeItem(atPath: p) } }
        let input = repositoryRoot.appendingPathComponent("fixtures/speech/es_16000.wav").path
        let toOgg = try await runProgram(binary, ["transcode", input, ogg, "--rate", "16000", "--bitrate", "20000"])
        #expect(toOgg.status == 0, "\(toOgg.stderr)")
        #expect(try await runProgram("/usr/bin/opusinfo", [ogg]).status == 0)
        let toWav = try await runProgram(binary, ["transcode", ogg, wav, "--rate", "16000"])
        #expect(toWav.status == 0, "\(toWav.stderr)")
        let decoded = try WAVAudio(parsing: [UInt8](try Data(contentsOf: URL(fileURLWithPath: wav))))
        #expect(decoded.samples.count == (try Speech.wav("es_16000")).samples.count)
        FileManager.default.createFile(atPath: bad, contents: Data("not audio".utf8))
        let refused = try await runProgram(binary, ["transcode", bad, wav])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("patchbay transcode:"))
        let unknown = try await runProgram(binary, ["transcode", input, Speech.temporary(".mp3")])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("unsupported output type"))
    }
}
