import Foundation
import Testing
import TestSupport
@testable import AudioCodecs

enum Speech {
    static func wav(_ name: String) throws -> WAVAudio {
        try WAVAudio(parsing: [UInt8](try Data(contentsOf: repositoryRoot.appendingPathComponent("fixtures/speech/\(name).wav"))))
    }

    static func temporary(_ suffix: String) -> String {
        NSTemporaryDirectory() + "patchbay-audio-\(UInt64.random(in: 0...UInt64.max))\(suffix)"
    }
}

@Suite("WAV")
struct WAVTests {
    @Test("The speech fixtures parse, and writing then parsing gives the same audio", arguments: ["es_8000", "en_16000", "es_24000"])
    func roundTrip(_ name: String) throws {
        let audio = try Speech.wav(name)
        #expect(audio.channels == 1)
        #expect(audio.sampleRate == Int(name.split(separator: "_")[1])!)
        #expect(audio.samples.count > audio.sampleRate * 2)
        #expect(try WAVAudio(parsing: audio.serialized()) == audio)
    }

    @Test("Extra chunks are skipped; non-PCM16 and garbage are refused with a message")
    func chunksAndRefusals() throws {
        var bytes = WAVAudio(sampleRate: 8000, samples: [1, -2, 3]).serialized()
        // Insert a LIST chunk (odd size: padded) before data.
        let list: [UInt8] = Array("LIST".utf8) + [3, 0, 0, 0, 0x41, 0x42, 0x43, 0]
        bytes.insert(contentsOf: list, at: 36)
        #expect(try WAVAudio(parsing: bytes).samples == [1, -2, 3])
        var float = WAVAudio(sampleRate: 8000, samples: [0]).serialized()
        float[20] = 3 // IEEE float
        #expect(throws: WAVAudio.FormatError.self) { try WAVAudio(parsing: float) }
        #expect(throws: WAVAudio.FormatError.self) { try WAVAudio(parsing: Array("not a wav file at all".utf8)) }
        #expect(throws: WAVAudio.FormatError.self) { try WAVAudio(parsing: []) }
    }
}

@Suite("Ogg/Opus interoperability with opus-tools", .serialized)
struct OggOpusTests {
    @Test("Files we write pass opusinfo and decode with opusdec to the original length", arguments: ["es_16000", "en_8000", "es_24000"])
    func ourFilesPlayElsewhere(_ name: String) async throws {
        let audio = try Speech.wav(name)
        let ogg = try OggOpusWriter.encode(audio, bitrate: 24_000, comments: ["TITLE=\(name)"])
        let path = Speech.temporary(".ogg"), out = Speech.temporary(".wav")
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: out) }
        FileManager.default.createFile(atPath: path, contents: Data(ogg))
        let info = try await runProgram("/usr/bin/opusinfo", [path])
        #expect(info.status == 0, "\(info.stdout)\(info.stderr)")
        #expect(!info.stdout.lowercased().contains("warning"), "\(info.stdout)")
        let dec = try await runProgram("/usr/bin/opusdec", ["--rate", String(audio.sampleRate), path, out])
        #expect(dec.status == 0, "\(dec.stderr)")
        let decoded = try WAVAudio(parsing: [UInt8](try Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(decoded.samples.count == audio.samples.count, "opusdec trims to the final granule: \(decoded.samples.count) vs \(audio.samples.count)")
    }

    @Test("Files opusenc writes are read back with the right length and headers", arguments: ["en_16000", "es_8000"])
    func theirFilesReadHere(_ name: String) async throws {
        let audio = try Speech.wav(name)
        let path = Speech.temporary(".opus")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let enc = try await runProgram("/usr/bin/opusenc", ["--quiet", "--bitrate", "24", repositoryRoot.appendingPathComponent("fixtures/speech/\(name).wav").path, path])
        try #require(enc.status == 0, "\(enc.stderr)")
        let (info, decoded) = try OggOpusReader.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), outputRate: 48000)
        #expect(info.inputSampleRate == audio.sampleRate)
        #expect(info.channels == 1)
        #expect(info.vendor.lowercased().contains("libopus"))
        let expected = audio.samples.count * 48000 / audio.sampleRate
        #expect(abs(decoded.samples.count - expected) <= 48000 / audio.sampleRate, "\(decoded.samples.count) vs \(expected)")
    }

    @Test("Our writer and reader agree: length exact, headers as written")
    func selfRoundTrip() throws {
        let audio = try Speech.wav("es_16000")
        let ogg = try OggOpusWriter.encode(audio, comments: ["ARTIST=patchbay"])
        let (info, decoded) = try OggOpusReader.decode(ogg, outputRate: 16000)
        #expect(decoded.samples.count == audio.samples.count)
        #expect(info.inputSampleRate == 16000)
        #expect(info.comments == ["ARTIST=patchbay"])
        #expect(info.preSkip > 0)
    }

    @Test("Corrupt or foreign input is refused with an error, never a crash", arguments: [
        [UInt8](), Array("OggS but not really an ogg file".utf8), [UInt8](repeating: 0xFF, count: 4096),
    ])
    func refusals(_ bytes: [UInt8]) {
        #expect(throws: OggOpusError.self) { try OggOpusReader.decode(bytes) }
    }

    @Test("A truncated file still decodes what it holds")
    func truncated() throws {
        let ogg = try OggOpusWriter.encode(try Speech.wav("en_8000"))
        let (_, decoded) = try OggOpusReader.decode(Array(ogg.prefix(ogg.count / 2)), outputRate: 8000)
        #expect(decoded.samples.count > 8000)
    }
}
