// Per-direction transcoding between two AudioFormats, one 20 ms frame at a time: decode to PCM16, resample,
// encode. Every buffer is allocated when the pipeline is built; `process` allocates nothing.
import AudioCore

/// Why a pipeline cannot be built.
public struct PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Converts frames of `source` format into frames of `target` format (e.g. Twilio mu-law 8 kHz -> PCM16 16 kHz,
/// PCM16 24 kHz -> mu-law 8 kHz). Identical formats are a zero-copy pass-through. One per direction per call;
/// used by one thread.
public final class TranscodePipeline {
    /// Input format.
    public let source: AudioFormat
    /// Output format.
    public let target: AudioFormat
    /// True when formats are identical: `process` hands back the input bytes untouched.
    public let isPassThrough: Bool

    private let resampler: Resampler?
    private let opusDecoder: OpusDecoder?
    private let opusEncoder: OpusEncoder?
    private let pcmIn: UnsafeMutableBufferPointer<Int16>
    private let pcmOut: UnsafeMutableBufferPointer<Int16>
    private let output: UnsafeMutableRawBufferPointer

    /// Builds the stages for `source` -> `target` (mono; Opus at the rates Opus takes).
    public init(from source: AudioFormat, to target: AudioFormat, resamplerQuality: Int = 4, opusBitrate: Int = 24_000) throws {
        guard source.channels == 1, target.channels == 1 else { throw PipelineError(message: "only mono pipelines are supported") }
        guard source.frameMillis == target.frameMillis else { throw PipelineError(message: "frame durations differ") }
        self.source = source
        self.target = target
        isPassThrough = source == target
        resampler = source.sampleRate != target.sampleRate && !isPassThrough
            ? try Resampler(inputRate: source.sampleRate, outputRate: target.sampleRate, quality: resamplerQuality) : nil
        opusDecoder = source.encoding == .opus ? try OpusDecoder(sampleRate: source.sampleRate) : nil
        if target.encoding == .opus {
            var s = OpusEncoderSettings(sampleRate: target.sampleRate)
            s.bitrate = opusBitrate
            opusEncoder = try OpusEncoder(s)
        } else {
            opusEncoder = nil
        }
        // Room for a frame plus the resampler's fractional carry.
        pcmIn = .allocate(capacity: source.sampleRate * source.frameMillis / 1000 + 8)
        pcmIn.initialize(repeating: 0)
        pcmOut = .allocate(capacity: target.sampleRate * target.frameMillis / 1000 * 2 + 16)
        pcmOut.initialize(repeating: 0)
        output = .allocate(byteCount: max(4000, pcmOut.count * 2), alignment: 8)
    }

    deinit {
        pcmIn.deallocate()
        pcmOut.deallocate()
        output.deallocate()
    }

    /// Converts one frame. Returns the output bytes: the input itself for a pass-through, else a view of the
    /// pipeline's buffer, valid until the next call. An empty result means the frame could not be decoded (a
    /// corrupt Opus packet): the caller conceals.
    public func process(_ input: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        if isPassThrough { return input }
        // 1. Decode to PCM16 at the source rate.
        var count = 0
        switch source.encoding {
        case .mulaw: count = MuLaw.decode(input.bindMemory(to: UInt8.self), into: pcmIn)
        case .alaw: count = ALaw.decode(input.bindMemory(to: UInt8.self), into: pcmIn)
        case .pcm16:
            count = min(input.count / 2, pcmIn.count)
            UnsafeMutableRawPointer(pcmIn.baseAddress!).copyMemory(from: input.baseAddress!, byteCount: count * 2)
        case .opus:
            let frame = UnsafeMutableBufferPointer(rebasing: pcmIn[0..<source.samplesPerFrame])
            guard case .decoded(let n) = opusDecoder!.decode(input.isEmpty ? nil : input, into: frame) else {
                return UnsafeRawBufferPointer(start: nil, count: 0)
            }
            count = n
        }
        // 2. Resample.
        var pcm = UnsafeBufferPointer(rebasing: pcmIn[0..<count])
        if let resampler {
            let (_, produced) = resampler.process(pcm, into: pcmOut)
            pcm = UnsafeBufferPointer(rebasing: pcmOut[0..<produced])
        }
        // 3. Encode.
        switch target.encoding {
        case .mulaw:
            return UnsafeRawBufferPointer(rebasing: output[0..<MuLaw.encode(pcm, into: output.bindMemory(to: UInt8.self))])
        case .alaw:
            return UnsafeRawBufferPointer(rebasing: output[0..<ALaw.encode(pcm, into: output.bindMemory(to: UInt8.self))])
        case .pcm16:
            output.baseAddress!.copyMemory(from: pcm.baseAddress!, byteCount: pcm.count * 2)
            return UnsafeRawBufferPointer(rebasing: output[0..<pcm.count * 2])
        case .opus:
            // Opus needs exactly one frame: pad a short one (the resampler's carry) with its last sample.
            let need = target.samplesPerFrame
            if pcm.count != need {
                let dst = UnsafeMutableBufferPointer(rebasing: pcmOut[0..<need])
                let have = min(pcm.count, need)
                if pcm.baseAddress != UnsafePointer(pcmOut.baseAddress) {
                    UnsafeMutableRawPointer(dst.baseAddress!).copyMemory(from: pcm.baseAddress!, byteCount: have * 2)
                }
                for i in have..<need { dst[i] = have > 0 ? dst[have - 1] : 0 }
                pcm = UnsafeBufferPointer(dst)
            }
            guard let n = opusEncoder!.encode(pcm, into: output) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
            return UnsafeRawBufferPointer(rebasing: output[0..<n])
        }
    }
}
