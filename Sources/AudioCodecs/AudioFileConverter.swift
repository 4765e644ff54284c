// File-to-file conversion for `patchbay transcode`: format by extension.
import Foundation

/// Converts audio files: `.wav` (PCM16), raw `.ulaw` / `.alaw` (8 kHz mono), `.ogg` / `.opus` (Ogg/Opus).
public enum AudioFileConverter {
    /// Options for a conversion.
    public struct Options: Sendable {
        /// Output sample rate (default: the input's for WAV; 8 kHz for G.711; Opus picks the nearest Opus rate).
        public var rate: Int?
        /// Opus bitrate.
        public var bitrate: Int = 24_000
        /// Opus complexity.
        public var complexity: Int = 10
        public init() {}
    }

    /// A conversion that cannot be done, with a message for the user.
    public struct ConversionError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    static let kinds = ["wav", "ulaw", "alaw", "ogg", "opus"]

    /// Reads `inputPath`, converts, writes `outputPath`. Returns a one-line summary.
    @discardableResult
    public static func convert(inputPath: String, outputPath: String, options: Options = Options()) throws -> String {
        let inExt = (inputPath as NSString).pathExtension.lowercased()
        let outExt = (outputPath as NSString).pathExtension.lowercased()
        guard kinds.contains(inExt) else { throw ConversionError(message: "unsupported input type .\(inExt) (use .wav, .ulaw, .alaw, .ogg or .opus)") }
        guard kinds.contains(outExt) else { throw ConversionError(message: "unsupported output type .\(outExt) (use .wav, .ulaw, .alaw, .ogg or .opus)") }
        guard let data = FileManager.default.contents(atPath: inputPath) else { throw ConversionError(message: "cannot read \(inputPath)") }
        let bytes = [UInt8](data)
        var audio: WAVAudio
        do {
            switch inExt {
            case "wav": audio = try WAVAudio(parsing: bytes)
            case "ulaw": audio = WAVAudio(sampleRate: 8000, samples: bytes.map(MuLawDecode))
            case "alaw": audio = WAVAudio(sampleRate: 8000, samples: bytes.map(ALawDecode))
            default: audio = try OggOpusReader.decode(bytes, outputRate: 48000).audio
            }
        } catch {
            throw ConversionError(message: "\(inputPath): \(error)")
        }
        guard audio.channels == 1 || outExt == "wav" || outExt == "ogg" || outExt == "opus" else {
            throw ConversionError(message: "G.711 output needs mono input")
        }
        guard !audio.samples.isEmpty else { throw ConversionError(message: "\(inputPath) holds no audio") }
        let targetRate: Int
        switch outExt {
        case "ulaw", "alaw": targetRate = 8000
        case "ogg", "opus": targetRate = [8000, 12000, 16000, 24000, 48000].contains(options.rate ?? audio.sampleRate) ? (options.rate ?? audio.sampleRate) : 48000
        default: targetRate = options.rate ?? audio.sampleRate
        }
        if targetRate != audio.sampleRate {
            guard audio.channels == 1 else { throw ConversionError(message: "resampling stereo is not supported") }
            let r = try Resampler(inputRate: audio.sampleRate, outputRate: targetRate, quality: 5)
            var out = [Int16](repeating: 0, count: r.outputCapacity(forInput: audio.samples.count))
            let (_, produced) = audio.samples.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { r.process(src, into: $0) } }
            audio = WAVAudio(sampleRate: targetRate, channels: 1, samples: Array(out[0..<produced]))
        }
        let output: [UInt8]
        switch outExt {
        case "wav": output = audio.serialized()
        case "ulaw": output = MuLaw.encode(audio.samples)
        case "alaw": output = ALaw.encode(audio.samples)
        default: output = try OggOpusWriter.encode(audio, bitrate: options.bitrate, complexity: options.complexity)
        }
        guard FileManager.default.createFile(atPath: outputPath, contents: Data(output)) else {
            throw ConversionError(message: "cannot write \(outputPath)")
        }
        let seconds = Double(audio.samples.count / audio.channels) / Double(audio.sampleRate)
        return "\(outputPath): \(String(format: "%.2f", seconds)) s, \(audio.sampleRate) Hz, \(output.count) bytes"
    }
}

import AudioCore
private func MuLawDecode(_ c: UInt8) -> Int16 { MuLaw.decode(c) }
private func ALawDecode(_ c: UInt8) -> Int16 { ALaw.decode(c) }
