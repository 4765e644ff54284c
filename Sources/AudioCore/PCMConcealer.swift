// Packet loss concealment for PCM and G.711 (Opus has its own PLC in the codec): repeat the last good frame while
// fading it out over 60 ms, then comfort noise. The same idea as ITU-T G.711 Appendix I, much simplified: no pitch
// search, a linear fade, and noise at about -60 dBFS so a long gap is neither silence nor a buzz.

/// Fills frames nobody received. One per stream direction; allocated once; nothing per frame.
public final class PCMConcealer {
    /// Samples in a frame.
    public let frameSamples: Int
    /// How long the last frame is repeated (fading) before comfort noise.
    public let fadeMillis: Int
    private let frameMillis: Int
    private let last: UnsafeMutableBufferPointer<Int16>
    private var concealedInARow = 0
    private var noise: UInt32 = 0x1234_5678

    /// A concealer for frames of `frameSamples` samples lasting `frameMillis`.
    public init(frameSamples: Int, frameMillis: Int = 20, fadeMillis: Int = 60) {
        self.frameSamples = frameSamples
        self.frameMillis = frameMillis
        self.fadeMillis = fadeMillis
        last = .allocate(capacity: frameSamples)
        last.initialize(repeating: 0)
    }

    deinit { last.deallocate() }

    /// Frames concealed since the last good one.
    public var run: Int { concealedInARow }

    /// Remembers a frame that was received (the source of the next repeat) and ends any concealment run.
    public func received(_ frame: UnsafeBufferPointer<Int16>) {
        let n = min(frame.count, frameSamples)
        for i in 0..<n { last[i] = frame[i] }
        concealedInARow = 0
    }

    /// Writes one concealment frame into `output`.
    public func conceal(into output: UnsafeMutableBufferPointer<Int16>) {
        let n = min(output.count, frameSamples)
        let fadeFrames = max(1, fadeMillis / frameMillis)
        if concealedInARow < fadeFrames {
            // Gain falls linearly from (1 - k/F) to (1 - (k+1)/F) across this frame: it reaches 0 at the fade's end.
            let start = 1 - Double(concealedInARow) / Double(fadeFrames)
            let step = 1 / Double(fadeFrames) / Double(n)
            for i in 0..<n { output[i] = Int16(Double(last[i]) * (start - step * Double(i + 1))) }
        } else {
            // Comfort noise: a 32-bit LCG (Numerical Recipes constants), about -60 dBFS.
            for i in 0..<n {
                noise = noise &* 1_664_525 &+ 1_013_904_223
                output[i] = Int16(truncatingIfNeeded: Int32(bitPattern: noise) >> 26)
            }
        }
        concealedInARow += 1
    }
}
