// The caller -> agent jitter stage for a reliable, ordered transport (Twilio Media Streams over TCP).
//
// Over TCP nothing is reordered or lost in flight, so holding frames to smooth jitter (what `JitterBuffer` does for
// playout) would only add delay in front of a speech recogniser that consumes bursts anyway. What the leg needs
// instead is continuity at real-time pace (shared/protocols/twilio-media-streams.md §6 "Gaps happen";
// elevenlabs-convai.md §7: 60 s without input ends the session):
// - frames are released the moment they arrive, in order; a repeated or older timestamp is dropped;
// - a jump in `media.timestamp` (upstream silence suppression) is filled with silence frames first;
// - a stall (nothing arrives while the clock runs) is filled with silence once it passes an allowance, so the
//   downstream never starves; a real frame that then arrives for time already filled is still sent (the caller's
//   speech matters more than strict pacing) and counted as late.
// Arrival is mapped to media time by the minimum transit seen (arrival - timestamp), as NetEq's delay manager does.
// Time is a parameter (ms); nothing here reads a clock or allocates.

/// Counters of the inbound stage.
public struct InboundStageStats: Sendable, Equatable {
    public var received = 0, forwarded = 0, duplicates = 0, late = 0
    /// Silence frames inserted for timestamp jumps.
    public var gapFrames = 0
    /// Silence frames inserted while nothing arrived.
    public var stallFrames = 0
    /// RFC 3550 §6.4.1 inter-arrival jitter (ms).
    public var jitterMillis: Double = 0
}

/// What to do with an arriving frame.
public enum InboundDecision: Sendable, Equatable {
    /// Send `silenceBefore` silence frames, then this frame.
    case forward(silenceBefore: Int)
    /// Drop it (a repeat of, or older than, the last real frame).
    case drop
}

/// See the file header.
public struct InboundJitterStage: Sendable {
    /// Frame duration (ms).
    public let frameMillis: Int64
    /// How far coverage may lag the clock before silence is synthesized (ms).
    public let stallAllowanceMillis: Int64
    /// Most silence frames inserted at once (bounds a pathological timestamp jump).
    public let maxFillFrames: Int
    public private(set) var stats = InboundStageStats()

    private var started = false
    private var minTransit: Int64 = 0
    private var coveredUntil: Int64 = 0
    private var lastRealTimestamp: Int64 = .min
    private var lastTransit: Int64 = 0

    public init(frameMillis: Int = 20, stallAllowanceMillis: Int = 60, maxFillFrames: Int = 250) {
        self.frameMillis = Int64(frameMillis)
        self.stallAllowanceMillis = Int64(stallAllowanceMillis)
        self.maxFillFrames = maxFillFrames
    }

    /// Whether a frame has arrived yet.
    public var hasStarted: Bool { started }

    /// A frame stamped `timestampMillis` (media time) arrived at `nowMillis`.
    public mutating func arrive(timestampMillis ts: Int64, nowMillis now: Int64) -> InboundDecision {
        stats.received += 1
        let transit = now - ts
        if !started {
            started = true
            minTransit = transit
            lastTransit = transit
            coveredUntil = ts
        }
        guard ts > lastRealTimestamp else { stats.duplicates += 1; return .drop }
        stats.jitterMillis += (Double(abs(transit - lastTransit)) - stats.jitterMillis) / 16
        lastTransit = transit
        minTransit = min(minTransit, transit)
        lastRealTimestamp = ts
        var fill = 0
        if ts >= coveredUntil + frameMillis {
            fill = min(maxFillFrames, Int((ts - coveredUntil) / frameMillis))
            stats.gapFrames += fill
            coveredUntil += Int64(fill) * frameMillis
        } else if ts < coveredUntil {
            stats.late += 1
        }
        coveredUntil = max(coveredUntil, ts + frameMillis)
        stats.forwarded += 1
        return .forward(silenceBefore: fill)
    }

    /// The clock reads `nowMillis`: how many silence frames to send now to keep coverage within the allowance.
    public mutating func tick(nowMillis now: Int64) -> Int {
        guard started else { return 0 }
        let mediaNow = now - minTransit
        let behind = mediaNow - stallAllowanceMillis - coveredUntil
        guard behind >= 0 else { return 0 }
        let frames = min(maxFillFrames, Int(behind / frameMillis) + 1)
        coveredUntil += Int64(frames) * frameMillis
        stats.stallFrames += frames
        return frames
    }

    /// When `tick` would next have work (ms), for scheduling a timer.
    public var nextTickMillis: Int64 { coveredUntil + stallAllowanceMillis + minTransit }
}
