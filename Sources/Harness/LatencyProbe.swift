// Latency carried in the audio itself, for load runs (`bridge-bench`):
// - `.sequence` (pass-through paths, where bytes arrive unchanged): each caller frame starts with a 22-byte header,
//   "PB", the frame number, the caller's send time, and room for the agent's echo time, which the agent simulator
//   fills in. The caller then has the round trip and both one-way times of every frame, and can count lost,
//   duplicated and reordered frames.
// - `.clicks` (transcoding paths, where bytes change): every fifth frame carries a short loud click; the caller
//   notes when it sent each click, the agent when it heard one, the caller when it came back (the registry below
//   joins the three by time, since clicks are 100 ms apart and latencies far shorter).
// All parties run in one process on one monotonic clock, so one-way times need no clock sync.
import AudioCore
import Foundation
import Synchronization

/// How a simulated caller marks its audio.
public enum ProbeMode: Sendable, Equatable {
    case none, sequence, clicks
}

/// The 22-byte sequence header.
public enum SequenceProbe {
    public static let headerBytes = 22
    static let magic: (UInt8, UInt8) = (0x50, 0x42)

    /// Writes the header into `frame` (frame number, caller send time; the agent time zeroed).
    public static func write(into frame: UnsafeMutableRawBufferPointer, sequence: UInt32, sentAt: UInt64) {
        frame[0] = magic.0
        frame[1] = magic.1
        frame.storeBytes(of: sequence.littleEndian, toByteOffset: 2, as: UInt32.self)
        frame.storeBytes(of: sentAt.littleEndian, toByteOffset: 6, as: UInt64.self)
        frame.storeBytes(of: UInt64(0), toByteOffset: 14, as: UInt64.self)
    }

    /// Reads a header: (frame number, caller send time, agent echo time).
    public static func read(_ bytes: UnsafeRawBufferPointer) -> (sequence: UInt32, sentAt: UInt64, agentAt: UInt64)? {
        guard bytes.count >= headerBytes, bytes[0] == magic.0, bytes[1] == magic.1 else { return nil }
        return (UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt32.self)),
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt64.self)),
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 14, as: UInt64.self)))
    }

    /// The agent stamps its echo time (in place, in the bytes it is about to send back).
    static func stampAgent(_ bytes: UnsafeMutableRawBufferPointer, at time: UInt64) {
        bytes.storeBytes(of: time.littleEndian, toByteOffset: 14, as: UInt64.self)
    }
}

/// Clicks: sent, heard by the agent, and back, joined by time per call.
public final class ProbeRegistry: Sendable {
    final class Call: Sendable {
        let sent = Mutex<[UInt64]>([])
        let heard = Mutex<[UInt64]>([])
        let interruptions = Mutex<[UInt64]>([])
    }
    private let calls = Mutex<[String: Call]>([:])

    public init() {}

    func call(_ id: String) -> Call {
        calls.withLock { map in
            if let c = map[id] { return c }
            let c = Call()
            map[id] = c
            return c
        }
    }

    /// The agent sent an `interruption` on call `id`.
    func interruptionSent(callID id: String, at t: UInt64) { call(id).interruptions.withLock { $0.append(t) } }

    /// For each `clear` the caller got (monotonic ns), the time since the agent's latest interruption before it.
    public func clearDelays(callID id: String, clears: [UInt64]) -> [UInt64] {
        let sent = call(id).interruptions.withLock { $0 }
        return clears.compactMap { c in sent.last { $0 <= c }.map { c - $0 } }
    }

    /// The caller sent a click.
    func clickSent(_ call: Call, at t: UInt64) { call.sent.withLock { $0.append(t) } }

    /// The agent heard a click of call `id`: returns the uplink time (ns) when a sent click matches.
    func clickHeard(callID id: String, at t: UInt64) -> UInt64? {
        let c = call(id)
        let sent = c.sent.withLock { $0.last { $0 <= t } }
        guard let sent, t - sent < 100_000_000 else { return nil }
        c.heard.withLock { $0.append(t) }
        return t - sent
    }

    /// A click came back to the caller at `t`: (round trip, downlink) when it matches.
    func clickReturned(_ call: Call, at t: UInt64) -> (rtt: UInt64, down: UInt64?)? {
        let sent = call.sent.withLock { $0.last { $0 <= t } }
        guard let sent, t - sent < 100_000_000 else { return nil }
        let heard = call.heard.withLock { $0.last { $0 <= t && $0 >= sent } }
        return (t - sent, heard.map { t - $0 })
    }

    /// The click: a 1 ms pulse at +24000 from sample 40 (mu-law). A pulse, not an alternating pattern: that would
    /// sit at 4 kHz, where the resamplers' low-pass filters remove it.
    static let clickStart = 40
    static let clickCodes: [UInt8] = Array(repeating: MuLaw.encode(24000), count: 8)

    /// Whether PCM holds a click (any sample beyond 12000: speech fixtures are not used in probe runs).
    static func hasClick(_ pcm: UnsafeBufferPointer<Int16>) -> Bool {
        for s in pcm where s > 12000 || s < -12000 { return true }
        return false
    }

    /// Whether mu-law bytes hold a click.
    static func hasClick(muLaw bytes: UnsafeRawBufferPointer) -> Bool {
        for b in bytes {
            let s = MuLaw.decode(b)
            if s > 12000 || s < -12000 { return true }
        }
        return false
    }
}

/// What a probed call measured (ns), per frame or click.
public struct ProbeSamples: Sendable {
    public var rtt: [UInt32] = []
    public var up: [UInt32] = []
    public var down: [UInt32] = []
    /// Sequence mode: distinct frames received, duplicates, reordered (arrived after a later one).
    public var distinct = 0, duplicates = 0, reordered = 0
    /// Highest frame number sent before the measuring window closed.
    public var lastSequenceSent: UInt32 = 0
    public var seen: [Bool] = []

    public init() {}

    mutating func reserve(_ n: Int) {
        rtt.reserveCapacity(n)
        up.reserveCapacity(n)
        down.reserveCapacity(n)
        seen = Array(repeating: false, count: n + 64)
    }
}
