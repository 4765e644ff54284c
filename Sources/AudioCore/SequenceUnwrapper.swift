// Sequence and timestamp arithmetic in one place (RFC 3550 §A.1 style unwrapping), as pion/interceptor's
// unwrapper.go and mediasoup's SeqManager do: wrapping counters become monotonic Int64s.

/// Unwraps a 16-bit sequence number (or any wrapping counter of `bits` bits) into a monotonic Int64, taking the
/// nearest value to the last one: a jump of less than half the range forward or back is read as that jump.
public struct SequenceUnwrapper: Sendable {
    private let bits: Int64
    private var last: Int64?

    /// An unwrapper for `bits`-bit counters (16 for RTP-like sequence numbers, 32 for timestamps).
    public init(bits: Int = 16) { self.bits = Int64(bits) }

    /// The unwrapped value of `value`.
    public mutating func unwrap(_ value: UInt64) -> Int64 {
        let range = Int64(1) << bits
        let v = Int64(value) & (range - 1)
        guard let last else { self.last = v; return v }
        var delta = v - (last & (range - 1))
        if delta > range / 2 { delta -= range } else if delta < -range / 2 { delta += range }
        let result = last + delta
        if result > last { self.last = result }
        return result
    }
}
