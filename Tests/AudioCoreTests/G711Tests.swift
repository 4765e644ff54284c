import Foundation
import Testing
@testable import AudioCore

/// The golden vectors in fixtures/g711 (from Python's audioop; see fixtures/g711/README.md).
enum G711Vectors {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/g711")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func samples(_ name: String) throws -> [Int16] {
        let b = try bytes(name)
        return stride(from: 0, to: b.count, by: 2).map { Int16(bitPattern: UInt16(b[$0]) | UInt16(b[$0 + 1]) << 8) }
    }
}

@Suite("G.711 against audioop")
struct G711Tests {
    enum Law: String, CaseIterable, Sendable { case ulaw, alaw }

    func encode(_ law: Law, _ s: Int16) -> UInt8 { law == .ulaw ? MuLaw.encode(s) : ALaw.encode(s) }
    func decode(_ law: Law, _ c: UInt8) -> Int16 { law == .ulaw ? MuLaw.decode(c) : ALaw.decode(c) }

    @Test("Every one of the 65,536 samples encodes to audioop's code", arguments: Law.allCases)
    func encodeAll(_ law: Law) throws {
        let expected = try G711Vectors.bytes("\(law.rawValue)_encode.bin")
        try #require(expected.count == 65536)
        var mismatches = 0
        for (i, code) in expected.enumerated() where encode(law, Int16(i - 32768)) != code { mismatches += 1 }
        #expect(mismatches == 0)
    }

    @Test("Every one of the 256 codes decodes to audioop's sample", arguments: Law.allCases)
    func decodeAll(_ law: Law) throws {
        let expected = try G711Vectors.samples("\(law.rawValue)_decode.bin")
        try #require(expected.count == 256)
        for code in 0..<256 { #expect(decode(law, UInt8(code)) == expected[code], "code \(code)") }
    }

    @Test("The frame APIs agree with the sample APIs and write only what fits", arguments: Law.allCases)
    func frames(_ law: Law) {
        let pcm: [Int16] = (0..<160).map { Int16(truncatingIfNeeded: $0 * 409 - 32768) }
        var codes = [UInt8](repeating: 0, count: 160)
        var back = [Int16](repeating: 0, count: 100) // shorter on purpose
        let n = pcm.withUnsafeBufferPointer { src in
            codes.withUnsafeMutableBufferPointer { dst in law == .ulaw ? MuLaw.encode(src, into: dst) : ALaw.encode(src, into: dst) }
        }
        #expect(n == 160)
        #expect(codes == pcm.map { encode(law, $0) })
        let m = codes.withUnsafeBufferPointer { src in
            back.withUnsafeMutableBufferPointer { dst in law == .ulaw ? MuLaw.decode(src, into: dst) : ALaw.decode(src, into: dst) }
        }
        #expect(m == 100)
        #expect(back == codes.prefix(100).map { decode(law, $0) })
    }

    @Test("Silence codes decode to zero and zero encodes to them")
    func silence() {
        #expect(MuLaw.encode(0) == MuLaw.silence)
        #expect(MuLaw.decode(MuLaw.silence) == 0)
        #expect(ALaw.encode(0) == ALaw.silence)
        #expect(abs(Int(ALaw.decode(ALaw.silence))) <= 8)
    }

    @Test("Decoding then re-encoding any code gives the same code back (the quantiser is idempotent)", arguments: Law.allCases)
    func idempotent(_ law: Law) {
        for code in 0..<256 {
            let c = UInt8(code)
            let again = encode(law, decode(law, c))
            // mu-law's two zeros (0x7F and 0xFF) both decode to 0, which encodes to 0xFF.
            #expect(again == c || (law == .ulaw && decode(law, c) == 0), "code \(code)")
        }
    }
}

@Suite("Audio formats")
struct AudioFormatTests {
    @Test("ElevenLabs names parse to formats and back", arguments: [
        ("ulaw_8000", AudioEncoding.mulaw, 8000), ("alaw_8000", .alaw, 8000), ("pcm_16000", .pcm16, 16000),
        ("pcm_22050", .pcm16, 22050), ("pcm_24000", .pcm16, 24000), ("pcm_44100", .pcm16, 44100), ("pcm_48000", .pcm16, 48000),
    ])
    func elevenLabsNames(_ c: (String, AudioEncoding, Int)) throws {
        let f = try #require(AudioFormat(elevenLabsName: c.0))
        #expect(f.encoding == c.1)
        #expect(f.sampleRate == c.2)
        #expect(f.elevenLabsName == c.0)
    }

    @Test("Anything else is refused rather than guessed", arguments: ["mp3_44100_128", "pcm_16000_x", "ulaw_16000", "pcm_12345", "opus_48000_64", "", "pcm_", "pcm_016000"])
    func refused(_ name: String) {
        #expect(AudioFormat(elevenLabsName: name) == nil)
    }

    @Test("Twilio's mediaFormat parses; frame sizes follow the rate")
    func twilio() throws {
        let f = try #require(AudioFormat(twilioEncoding: "audio/x-mulaw", sampleRate: 8000, channels: 1))
        #expect(f == .twilioMuLaw)
        #expect(f.samplesPerFrame == 160)
        #expect(f.bytesPerFrame == 160)
        #expect(AudioFormat(encoding: .pcm16, sampleRate: 22050).samplesPerFrame == 441)
        #expect(AudioFormat(encoding: .pcm16, sampleRate: 16000).bytesPerFrame == 640)
        #expect(AudioFormat(twilioEncoding: "audio/mpeg", sampleRate: 8000, channels: 1) == nil)
        #expect(AudioFormat(twilioEncoding: "audio/x-mulaw", sampleRate: 0, channels: 1) == nil)
    }
}
