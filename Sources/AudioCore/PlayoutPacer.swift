// The agent -> caller playout clock: how far ahead of real time we may send, and when the next frame may go.
//
// Twilio plays what we send in order at real-time rate and queues the rest (twilio-media-streams.md §6), so
// everything sent ahead of real time is audio that a barge-in must `clear`. The pacer models Twilio's queue as
// `playoutEnd`, the moment the last frame sent will have finished playing (if Twilio plays from the moment it
// receives). A frame may go when, after it, the lead `playoutEnd - now` stays within `maxLead`; otherwise it waits
// until `playoutEnd - maxLead + frame` (a deadline that advances 20 ms a frame: no drift, no sleeps). A steady network
// delay to Twilio shifts its queue by the same amount and leaves its depth within `maxLead`. Echoed marks are not fed
// back into the pacing: an echo is late by its own trip back, and correcting the model by it would ratchet the lead
// up after every hiccup and never come down (a test under load showed 680 ms of backlog that way); marks account for
// what was heard instead (PlaybackLedger).
// Time is a parameter (ns on the caller's monotonic clock); nothing here reads a clock.

/// See the file header.
public struct PlayoutPacer: Sendable {
    /// Frame duration (ns).
    public let frameNanos: UInt64
    /// Most audio allowed to sit in Twilio's queue (ns).
    public let maxLeadNanos: UInt64
    /// When the last frame sent finishes playing (model), ns.
    public private(set) var playoutEnd: UInt64 = 0
    /// Frames sent more than half a frame after the queue ran dry within one response (the caller heard a gap;
    /// shorter slips are absorbed by the far end's own playout buffer and are not counted).
    public private(set) var underruns = 0
    /// Total length of those gaps (ns).
    public private(set) var gapNanos: UInt64 = 0
    /// Longest single gap (ns).
    public private(set) var longestGapNanos: UInt64 = 0

    public init(frameMillis: Int = 20, maxLeadMillis: Int = 80) {
        frameNanos = UInt64(frameMillis) * 1_000_000
        maxLeadNanos = UInt64(max(frameMillis, maxLeadMillis)) * 1_000_000
    }

    /// Audio queued at Twilio now (ns), per the model.
    public func lead(now: UInt64) -> UInt64 { playoutEnd > now ? playoutEnd - now : 0 }

    /// Whether a frame may be sent now.
    public func canSend(now: UInt64) -> Bool { lead(now: now) + frameNanos <= maxLeadNanos }

    /// When the next frame may be sent (ns).
    public var nextSendTime: UInt64 { playoutEnd + frameNanos > maxLeadNanos ? playoutEnd + frameNanos - maxLeadNanos : 0 }

    /// A frame was sent at `now`; `continuesResponse`: the previous frame sent belonged to the same response, so a
    /// dry queue before it is a gap the caller heard.
    public mutating func didSend(now: UInt64, continuesResponse: Bool) {
        if playoutEnd < now {
            if continuesResponse && playoutEnd > 0 && now - playoutEnd > frameNanos / 2 {
                let gap = now - playoutEnd
                underruns += 1
                gapNanos += gap
                longestGapNanos = max(longestGapNanos, gap)
            }
            playoutEnd = now
        }
        playoutEnd += frameNanos
    }

    /// Twilio's queue was cleared at `now`.
    public mutating func cleared(now: UInt64) { playoutEnd = now }
}
