// Ogg/Opus (RFC 7845) files through libogg: the format of WhatsApp voice notes.
import AudioCore
internal import COgg
internal import COpus

/// Why an Ogg/Opus file could not be written or read.
public struct OggOpusError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Encodes PCM into an Ogg/Opus file (RFC 7845): OpusHead with the encoder's pre-skip, OpusTags, audio pages
/// with 48 kHz granule positions, and an end-of-stream page whose granule trims the padding of the last frame.
public enum OggOpusWriter {
    /// Encodes mono or stereo PCM16 at `sampleRate` (any rate: rates Opus does not take are resampled to 48 kHz
    /// first) into an Ogg/Opus file. 20 ms frames, VoIP tuning unless `settings` say otherwise.
    public static func encode(_ audio: WAVAudio, bitrate: Int = 24_000, complexity: Int = 10, vendor: String = "patchbay",
                              comments: [String] = []) throws -> [UInt8] {
        var pcm = audio.samples
        var rate = audio.sampleRate
        if !opusRates.contains(rate) {
            guard audio.channels == 1 else { throw OggOpusError(message: "stereo input at \(rate) Hz: resample it to an Opus rate first") }
            let r = try Resampler(inputRate: rate, outputRate: 48000, quality: 5)
            var out = [Int16](repeating: 0, count: r.outputCapacity(forInput: pcm.count))
            let (_, produced) = pcm.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { r.process(src, into: $0) } }
            pcm = Array(out[0..<produced])
            rate = 48000
        }
        var settings = OpusEncoderSettings(sampleRate: rate)
        settings.channels = audio.channels
        settings.bitrate = bitrate
        settings.complexity = complexity
        let encoder = try OpusEncoder(settings)
        let scale = 48000 / rate
        let preSkip = encoder.lookahead * scale
        let frame = rate / 50 * audio.channels
        // Encode the look-ahead's worth of silence past the end, so the decoder has output up to the last real sample.
        let totalFrames = (pcm.count + encoder.lookahead * audio.channels + frame - 1) / frame
        // RFC 7845 §4: the final granule position is pre-skip plus the real (unpadded) length at 48 kHz.
        let finalGranule = Int64(preSkip + pcm.count / audio.channels * scale)

        var stream = ogg_stream_state()
        ogg_stream_init(&stream, Int32.random(in: 1...Int32.max))
        defer { ogg_stream_clear(&stream) }
        var file: [UInt8] = []
        file.reserveCapacity(bitrate / 8 * (pcm.count / max(1, rate * audio.channels) + 1) + 4096)

        // libogg copies the packet into its own buffer: hand it the bytes where they are.
        func emit(_ buf: UnsafeMutableRawBufferPointer, granule: Int64, packetNumber: Int64, bos: Bool, eos: Bool) {
            var packet = ogg_packet()
            packet.packet = buf.baseAddress?.assumingMemoryBound(to: UInt8.self)
            packet.bytes = buf.count
            packet.b_o_s = bos ? 1 : 0
            packet.e_o_s = eos ? 1 : 0
            packet.granulepos = granule
            packet.packetno = packetNumber
            ogg_stream_packetin(&stream, &packet)
        }
        func drain(flush: Bool) {
            var page = ogg_page()
            while (flush ? ogg_stream_flush(&stream, &page) : ogg_stream_pageout(&stream, &page)) != 0 {
                file.append(contentsOf: UnsafeRawBufferPointer(start: page.header, count: page.header_len))
                file.append(contentsOf: UnsafeRawBufferPointer(start: page.body, count: page.body_len))
            }
        }

        // OpusHead (RFC 7845 §5.1), alone on the first page.
        var head = Array("OpusHead".utf8) + [1, UInt8(audio.channels)]
        head += [UInt8(preSkip & 0xFF), UInt8(preSkip >> 8)]
        let inputRate = UInt32(audio.sampleRate)
        head += [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: inputRate >> $0) }
        head += [0, 0, 0] // output gain 0, channel mapping family 0
        head.withUnsafeMutableBytes { emit($0, granule: 0, packetNumber: 0, bos: true, eos: false) }
        drain(flush: true)
        // OpusTags (RFC 7845 §5.2), on its own page(s).
        var tags = Array("OpusTags".utf8)
        func put32(_ v: Int) { tags += [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: v >> $0) } }
        put32(vendor.utf8.count); tags += Array(vendor.utf8)
        put32(comments.count)
        for c in comments { put32(c.utf8.count); tags += Array(c.utf8) }
        tags.withUnsafeMutableBytes { emit($0, granule: 0, packetNumber: 1, bos: false, eos: false) }
        drain(flush: true)

        var packet = [UInt8](repeating: 0, count: 1275 * 3)
        var framePCM = [Int16](repeating: 0, count: frame)
        for k in 0..<max(totalFrames, 1) {
            let start = k * frame
            for i in 0..<frame { framePCM[i] = start + i < pcm.count ? pcm[start + i] : 0 }
            guard let n = framePCM.withUnsafeBufferPointer({ src in packet.withUnsafeMutableBytes { encoder.encode(src, into: $0) } }) else {
                throw OggOpusError(message: "the Opus encoder refused frame \(k)")
            }
            let last = k == max(totalFrames, 1) - 1
            // Granule = 48 kHz samples decoded so far, the pre-skipped ones included (RFC 7845 §4); the last page's
            // is smaller than its packets decode to, and that difference is the end trimming.
            let granule = last ? finalGranule : Int64((k + 1) * (frame / audio.channels) * scale)
            packet.withUnsafeMutableBytes { emit(UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), granule: granule, packetNumber: Int64(k + 2), bos: false, eos: last) }
            drain(flush: last)
        }
        return file
    }
}

/// Reads an Ogg/Opus file: OpusHead, OpusTags, then every audio packet decoded, with the pre-skip removed and the
/// end trimmed to the final granule position (RFC 7845 §4).
public enum OggOpusReader {
    /// What the file's headers say.
    public struct Info: Sendable, Equatable {
        public var channels: Int
        public var preSkip: Int
        public var inputSampleRate: Int
        public var vendor: String
        public var comments: [String]
    }

    /// Decodes the first logical Opus stream of `bytes` to PCM16 at `outputRate` (default 48 kHz).
    public static func decode(_ bytes: [UInt8], outputRate: Int = 48000) throws -> (info: Info, audio: WAVAudio) {
        var sync = ogg_sync_state()
        ogg_sync_init(&sync)
        defer { ogg_sync_clear(&sync) }
        if let buffer = ogg_sync_buffer(&sync, bytes.count), !bytes.isEmpty {
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            ogg_sync_wrote(&sync, bytes.count)
        }
        var stream = ogg_stream_state()
        var streamStarted = false
        defer { if streamStarted { ogg_stream_clear(&stream) } }
        var info: Info?
        var decoder: OpusDecoder?
        var packetIndex = 0
        var pcm: [Int16] = []
        var lastGranule: Int64 = -1
        var corruptRun = 0
        var page = ogg_page()
        while ogg_sync_pageout(&sync, &page) == 1 {
            if !streamStarted {
                guard ogg_page_bos(&page) != 0 else { continue }
                ogg_stream_init(&stream, ogg_page_serialno(&page))
                streamStarted = true
            }
            guard ogg_page_serialno(&page) == stream.serialno else { continue } // other logical streams
            ogg_stream_pagein(&stream, &page)
            var packet = ogg_packet()
            while ogg_stream_packetout(&stream, &packet) == 1 {
                let data = UnsafeRawBufferPointer(start: packet.packet, count: packet.bytes)
                defer { packetIndex += 1 }
                if packetIndex == 0 {
                    info = try parseHead(data)
                    decoder = try OpusDecoder(sampleRate: outputRate, channels: info!.channels)
                    continue
                }
                if packetIndex == 1 {
                    let (vendor, comments) = try parseTags(data)
                    info!.vendor = vendor
                    info!.comments = comments
                    continue
                }
                guard let decoder, let info else { throw OggOpusError(message: "audio before the Opus headers") }
                var frame = [Int16](repeating: 0, count: 5760 * info.channels * outputRate / 48000)
                switch frame.withUnsafeMutableBufferPointer({ decoder.decode(data, into: $0) }) {
                case .decoded(let n):
                    pcm.append(contentsOf: frame[0..<n * info.channels])
                    corruptRun = 0
                case .corrupt:
                    corruptRun += 1
                    if corruptRun > 5 { throw OggOpusError(message: "too many undecodable Opus packets in a row") }
                }
                if packet.granulepos >= 0 { lastGranule = packet.granulepos }
            }
        }
        guard let info else { throw OggOpusError(message: "no Opus stream (missing or corrupt OpusHead)") }
        let scale = Double(outputRate) / 48000
        let skip = min(pcm.count, Int((Double(info.preSkip) * scale).rounded()) * info.channels)
        var audio = Array(pcm[skip...])
        if lastGranule >= 0 {
            let wanted = Int((Double(lastGranule - Int64(info.preSkip)) * scale).rounded()) * info.channels
            if wanted >= 0 && wanted < audio.count { audio.removeLast(audio.count - wanted) }
        }
        return (info, WAVAudio(sampleRate: outputRate, channels: info.channels, samples: audio))
    }

    static func parseHead(_ d: UnsafeRawBufferPointer) throws -> Info {
        guard d.count >= 19, String(decoding: d[0..<8], as: UTF8.self) == "OpusHead" else { throw OggOpusError(message: "missing OpusHead") }
        guard d[8] & 0xF0 == 0 else { throw OggOpusError(message: "unsupported OpusHead version \(d[8])") }
        let channels = Int(d[9])
        guard channels >= 1, channels <= 2 || d[18] != 0 else { throw OggOpusError(message: "bad channel count \(channels)") }
        guard d[18] == 0 else { throw OggOpusError(message: "channel mapping family \(d[18]) is not supported") }
        let preSkip = Int(d[10]) | Int(d[11]) << 8
        let rate = Int(d[12]) | Int(d[13]) << 8 | Int(d[14]) << 16 | Int(d[15]) << 24
        return Info(channels: channels, preSkip: preSkip, inputSampleRate: rate, vendor: "", comments: [])
    }

    static func parseTags(_ d: UnsafeRawBufferPointer) throws -> (String, [String]) {
        guard d.count >= 16, String(decoding: d[0..<8], as: UTF8.self) == "OpusTags" else { throw OggOpusError(message: "missing OpusTags") }
        var i = 8
        func u32() throws -> Int {
            guard i + 4 <= d.count else { throw OggOpusError(message: "truncated OpusTags") }
            defer { i += 4 }
            return Int(d[i]) | Int(d[i + 1]) << 8 | Int(d[i + 2]) << 16 | Int(d[i + 3]) << 24
        }
        func string() throws -> String {
            let n = try u32()
            guard n >= 0, i + n <= d.count else { throw OggOpusError(message: "truncated OpusTags") }
            defer { i += n }
            return String(decoding: d[i..<i + n], as: UTF8.self)
        }
        let vendor = try string()
        let count = try u32()
        guard count <= 10_000 else { throw OggOpusError(message: "implausible comment count \(count)") }
        var comments: [String] = []
        for _ in 0..<count { comments.append(try string()) }
        return (vendor, comments)
    }
}
