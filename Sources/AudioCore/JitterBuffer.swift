// The jitter buffer: a fixed ring of frames indexed by sequence number, drained by a 20 ms playout clock.
//
// Pieces, as in WebRTC NetEq (modules/audio_coding/neteq): storage (the ring), a delay estimator (histogram of
// relative arrival delay, below), the decision made at each pull (play, conceal, stretch, compress), and
// concealment (the caller's codec PLC for Opus, `PCMConcealer` for PCM and G.711).
// What we took:
// - NetEq's delay manager: relative delay = transit time of a packet minus the smallest transit seen over the last
//   2 seconds; a histogram of it in 20 ms buckets with exponential forgetting (0.983 per packet); the target delay
//   is its 0.95 quantile, clamped between a minimum and a maximum. A late packet raises the target at once (its
//   bucket gets the new mass); the target only falls as forgetting wears old mass away.
// - NetEq's decision logic, simplified: an empty slot with later frames present is lost (conceal, advance); with
//   nothing later it is an underrun (conceal without advancing: the playout "stretches" and the delay grows by one
//   frame); a playout delay short of the target also holds the next frame one tick (NetEq's preemptive expand,
//   done here by concealment rather than time-stretching); when the delay stays above target for a while, one
//   frame is dropped ("accelerate").
// - From the Speex jitter buffer and PJSIP's jbuf: late frames are counted and discarded one by one, never by
//   flushing the buffer; duplicates are detected by the slot's sequence number.
// Time is a parameter (milliseconds on the caller's monotonic clock); nothing here reads a clock or allocates
// after init.

/// Settings of a jitter buffer.
public struct JitterBufferConfiguration: Sendable {
    /// Frame duration (ms).
    public var frameMillis: Int = 20
    /// Timestamp units per second (8000 for G.711 at 8 kHz, 48000 for Opus).
    public var clockRate: Int = 8000
    /// Slots in the ring (rounded up to a power of two): the most frames it can hold.
    public var capacity: Int = 64
    /// The largest payload a slot holds.
    public var maxPayloadBytes: Int = 1500
    /// Lowest target delay (ms).
    public var minDelayMillis: Int = 20
    /// Highest target delay (ms); playout delay is pulled back under it at once.
    public var maxDelayMillis: Int = 200
    /// The quantile of the relative-delay distribution the target follows.
    public var quantile: Double = 0.95
    /// Histogram forgetting factor per packet.
    public var forgetFactor: Double = 0.983
    /// Pulls the delay must stay above target before one frame is dropped.
    public var compressAfterPulls: Int = 25

    public init() {}
}

/// Counters and gauges.
public struct JitterBufferStats: Sendable, Equatable {
    public var received = 0, played = 0, late = 0, lost = 0, concealed = 0, duplicates = 0, reordered = 0
    public var underruns = 0, compressed = 0, expanded = 0, overflows = 0
    /// Frames held, in ms.
    public var currentDepthMillis = 0
    /// The delay the buffer aims at.
    public var targetDelayMillis = 0
    /// How long after its ideal arrival the last frame played (ms).
    public var playoutDelayMillis = 0
    /// RFC 3550 inter-arrival jitter estimate (ms).
    public var jitterMillis: Double = 0
}

/// What `push` did with a frame.
public enum JitterPushResult: Sendable, Equatable {
    case stored, duplicate, late, tooLarge, overflow
}

/// What to play for this 20 ms tick.
public enum JitterPullResult: Sendable, Equatable {
    /// A frame: its payload was copied into the caller's buffer.
    case frame(sequence: Int64, bytes: Int)
    /// Nothing to play: conceal (codec PLC or `PCMConcealer`). `lost`: the frame is gone; otherwise an underrun.
    case conceal(lost: Bool)
    /// Not started yet (nothing received): play silence.
    case waiting
}

/// The jitter buffer. Loop-owned (one per call direction); everything allocated at init.
public final class JitterBuffer {
    public let configuration: JitterBufferConfiguration
    public private(set) var stats = JitterBufferStats()

    private let mask: Int
    private let slotSequence: UnsafeMutableBufferPointer<Int64>
    private let slotLength: UnsafeMutableBufferPointer<Int>
    private let storage: UnsafeMutableRawBufferPointer
    private var sequences = SequenceUnwrapper(bits: 16)
    private var timestamps = SequenceUnwrapper(bits: 32)

    // Playout state.
    private var nextSequence: Int64 = -1
    private var highestSequence: Int64 = -1
    private var firstSequence: Int64 = 0
    private var firstSendMillis: Double = 0
    private var aboveTargetPulls = 0
    // Delay estimator state.
    private let histogram: UnsafeMutableBufferPointer<Double>
    private let transitWindow: UnsafeMutableBufferPointer<Double>
    private var transitCount = 0
    private var minTransit: Double = .infinity
    private var minTransitIndex = 0
    private var lastTransit: Double?
    private var targetMillis: Int

    public init(_ configuration: JitterBufferConfiguration = JitterBufferConfiguration()) {
        var c = configuration
        var slots = 1
        while slots < max(2, c.capacity) { slots <<= 1 }
        c.capacity = slots
        self.configuration = c
        mask = slots - 1
        slotSequence = .allocate(capacity: slots)
        slotSequence.initialize(repeating: -1)
        slotLength = .allocate(capacity: slots)
        slotLength.initialize(repeating: 0)
        storage = .allocate(byteCount: slots * c.maxPayloadBytes, alignment: 16)
        histogram = .allocate(capacity: max(2, c.maxDelayMillis / c.frameMillis + 2))
        histogram.initialize(repeating: 0)
        transitWindow = .allocate(capacity: max(1, 2000 / c.frameMillis)) // 2 s of packets
        transitWindow.initialize(repeating: .infinity)
        targetMillis = max(c.minDelayMillis, c.frameMillis)
        stats.targetDelayMillis = targetMillis
    }

    deinit {
        slotSequence.deallocate()
        slotLength.deallocate()
        storage.deallocate()
        histogram.deallocate()
        transitWindow.deallocate()
    }

    /// Stores a frame that arrived at `arrivalMillis`.
    public func push(sequence: UInt16, timestamp: UInt32, payload: UnsafeRawBufferPointer, arrivalMillis: Int64) -> JitterPushResult {
        guard payload.count <= configuration.maxPayloadBytes else { return .tooLarge }
        let seq = sequences.unwrap(UInt64(sequence))
        let ts = timestamps.unwrap(UInt64(timestamp))
        stats.received += 1
        let sendMillis = Double(ts) * 1000 / Double(configuration.clockRate)
        if highestSequence < 0 { firstSequence = seq; firstSendMillis = sendMillis }
        observe(transit: Double(arrivalMillis) - sendMillis)
        if nextSequence >= 0 && seq < nextSequence { stats.late += 1; return .late }
        let slot = Int(seq & Int64(mask))
        if slotSequence[slot] == seq { stats.duplicates += 1; return .duplicate }
        if highestSequence >= 0 && seq - max(nextSequence, 0) >= Int64(configuration.capacity) {
            stats.overflows += 1
            return .overflow // never flush the ring: refuse the one frame that does not fit
        }
        if seq < highestSequence { stats.reordered += 1 }
        slotSequence[slot] = seq
        slotLength[slot] = payload.count
        if let src = payload.baseAddress, payload.count > 0 {
            (storage.baseAddress! + slot * configuration.maxPayloadBytes).copyMemory(from: src, byteCount: payload.count)
        }
        highestSequence = max(highestSequence, seq)
        if nextSequence < 0 { nextSequence = seq }
        updateDepth()
        return .stored
    }

    /// One playout tick at `nowMillis`: copies the frame to play into `output` or says to conceal.
    public func pull(nowMillis: Int64, into output: UnsafeMutableRawBufferPointer) -> JitterPullResult {
        guard nextSequence >= 0 else { return .waiting }
        let frame = configuration.frameMillis
        // How long after its ideal arrival (minimum transit) the next frame plays now.
        let ideal = firstSendMillis + Double(nextSequence - firstSequence) * Double(frame) + minTransit
        var delay = Double(nowMillis) - ideal
        // Compress: too much delay for a while (or over the maximum at once) and a later frame is here: drop one.
        if delay > Double(targetMillis + frame) && highestSequence > nextSequence {
            aboveTargetPulls += 1
            if aboveTargetPulls >= configuration.compressAfterPulls || delay > Double(configuration.maxDelayMillis) {
                aboveTargetPulls = 0
                discard(nextSequence)
                nextSequence += 1
                stats.compressed += 1
                delay -= Double(frame)
            }
        } else {
            aboveTargetPulls = 0
        }
        // Expand: playing this early leaves less margin than the target asks for (the target rose): hold the
        // frame one more tick (NetEq's preemptive expand; we conceal where NetEq time-stretches).
        if delay + Double(frame) / 2 < Double(targetMillis) {
            stats.playoutDelayMillis = Int(delay.rounded())
            stats.concealed += 1
            stats.expanded += 1
            return .conceal(lost: false)
        }
        stats.playoutDelayMillis = Int(delay.rounded())
        let slot = Int(nextSequence & Int64(mask))
        if slotSequence[slot] == nextSequence {
            let n = min(slotLength[slot], output.count)
            if n > 0 { output.baseAddress!.copyMemory(from: storage.baseAddress! + slot * configuration.maxPayloadBytes, byteCount: n) }
            slotSequence[slot] = -1
            let played = nextSequence
            nextSequence += 1
            stats.played += 1
            updateDepth()
            return .frame(sequence: played, bytes: n)
        }
        stats.concealed += 1
        if highestSequence > nextSequence {
            nextSequence += 1 // a later frame is here: this one is lost
            stats.lost += 1
            updateDepth()
            return .conceal(lost: true)
        }
        stats.underruns += 1 // nothing newer: stretch (do not advance), the delay grows by a frame
        return .conceal(lost: false)
    }

    /// The delay the buffer currently aims at (ms).
    public var targetDelayMillis: Int { targetMillis }

    private func discard(_ seq: Int64) {
        let slot = Int(seq & Int64(mask))
        if slotSequence[slot] == seq { slotSequence[slot] = -1 }
    }

    private func updateDepth() {
        stats.currentDepthMillis = highestSequence >= nextSequence ? Int(highestSequence - nextSequence + 1) * configuration.frameMillis : 0
    }

    /// The delay estimator (NetEq delay manager, simplified): relative delay histogram with forgetting.
    private func observe(transit: Double) {
        // RFC 3550 §6.4.1 jitter, for the stats.
        if let last = lastTransit { stats.jitterMillis += (abs(transit - last) - stats.jitterMillis) / 16 }
        lastTransit = transit
        // Minimum transit over the last 2 seconds of packets (drift moves it; a fixed window follows it). The
        // window is rescanned only when its minimum leaves it (about once per window), not per packet.
        let w = transitWindow.count
        transitWindow[transitCount % w] = transit
        if transit <= minTransit {
            minTransit = transit
            minTransitIndex = transitCount
        } else if transitCount - minTransitIndex >= w {
            minTransit = .infinity
            for i in 0..<min(w, transitCount + 1) where transitWindow[i] < minTransit {
                minTransit = transitWindow[i]
                minTransitIndex = transitCount - ((transitCount % w - i + w) % w)
            }
        }
        transitCount += 1
        let relative = max(0, transit - minTransit)
        let f = configuration.forgetFactor
        for i in 0..<histogram.count { histogram[i] *= f }
        let bucket = min(histogram.count - 1, Int(relative / Double(configuration.frameMillis)))
        histogram[bucket] += 1 - f
        // Target: the quantile's bucket upper edge, so a frame that late still arrives in time.
        var total = 0.0
        for v in histogram { total += v }
        var cumulative = 0.0
        var index = 0
        while index < histogram.count - 1 {
            cumulative += histogram[index]
            if cumulative >= configuration.quantile * total { break }
            index += 1
        }
        let target = (index + 1) * configuration.frameMillis
        targetMillis = min(configuration.maxDelayMillis, max(configuration.minDelayMillis, target))
        stats.targetDelayMillis = targetMillis
    }
}
