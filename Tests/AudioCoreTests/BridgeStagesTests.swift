// The bridge's pure stages on a manual clock: the inbound jitter stage, the playout pacer, the frame ring.
import Testing
@testable import AudioCore

@Suite("Inbound stage and playout pacer")
struct BridgeStagesTests {
    @Test("in-order frames go at once; a timestamp jump is filled; a repeat is dropped")
    func inboundOrder() {
        var s = InboundJitterStage()
        #expect(s.arrive(timestampMillis: 52, nowMillis: 1000) == .forward(silenceBefore: 0))
        #expect(s.arrive(timestampMillis: 72, nowMillis: 1020) == .forward(silenceBefore: 0))
        #expect(s.arrive(timestampMillis: 72, nowMillis: 1021) == .drop)
        #expect(s.arrive(timestampMillis: 152, nowMillis: 1100) == .forward(silenceBefore: 3)) // 92, 112, 132 missing
        #expect(s.stats.gapFrames == 3 && s.stats.duplicates == 1 && s.stats.forwarded == 3)
    }

    @Test("a stall is filled with silence after the allowance, at real-time pace; late real frames still go")
    func inboundStall() {
        var s = InboundJitterStage(stallAllowanceMillis: 60)
        for i in 0..<10 { _ = s.arrive(timestampMillis: Int64(i * 20), nowMillis: Int64(i * 20)) }
        // Covered up to 200 ms media time; nothing arrives until 400 ms.
        #expect(s.tick(nowMillis: 250) == 0)
        var filled = 0
        for now in stride(from: 260, through: 400, by: 20) { filled += s.tick(nowMillis: Int64(now)) }
        #expect(filled == 8) // covers 200...360: the clock (400) minus the 60 ms allowance, rounded up to frames
        // The stalled frames arrive in a burst: real speech is not thrown away, it is counted late.
        for i in 10..<18 { #expect(s.arrive(timestampMillis: Int64(i * 20), nowMillis: 401) == .forward(silenceBefore: 0)) }
        #expect(s.stats.late == 8 && s.stats.stallFrames == 8)
    }

    @Test("over 10 minutes of steady input no silence is ever inserted")
    func inboundSteady() {
        var s = InboundJitterStage()
        var rng = SplitMix64(state: 7)
        for i in 0..<30_000 {
            let jitter = Int64(rng.next() % 15)
            if case .forward(let n) = s.arrive(timestampMillis: Int64(i * 20), nowMillis: Int64(i * 20) + jitter) { #expect(n == 0) }
            #expect(s.tick(nowMillis: Int64(i * 20) + jitter) == 0)
        }
        #expect(s.stats.stallFrames == 0 && s.stats.gapFrames == 0)
    }

    @Test("the pacer sends a burst up to the lead, then one frame per 20 ms deadline; the lead never exceeds its bound")
    func pacerBurst() {
        var p = PlayoutPacer(maxLeadMillis: 80)
        let ms: UInt64 = 1_000_000
        var now: UInt64 = 1_000 * ms
        var sent = 0
        while p.canSend(now: now) { p.didSend(now: now, continuesResponse: sent > 0); sent += 1 }
        #expect(sent == 4)
        for _ in 0..<100 {
            now = p.nextSendTime
            #expect(p.canSend(now: now))
            p.didSend(now: now, continuesResponse: true)
            #expect(p.lead(now: now) <= 80 * ms)
            #expect(!p.canSend(now: now))
        }
        #expect(p.underruns == 0)
    }

    @Test("a frame after the queue ran dry mid-response is an underrun; a slip under half a frame is not")
    func pacerUnderrun() {
        var p = PlayoutPacer(maxLeadMillis: 80)
        let ms: UInt64 = 1_000_000
        p.didSend(now: 0, continuesResponse: false)
        p.didSend(now: 25 * ms, continuesResponse: true) // 5 ms late: absorbed
        p.didSend(now: 200 * ms, continuesResponse: true) // 155 ms gap
        p.didSend(now: 400 * ms, continuesResponse: false) // a new response after silence: not a gap
        #expect(p.underruns == 1 && p.longestGapNanos == 155 * ms)
    }

    @Test("a clear empties the model's queue at once")
    func pacerClear() {
        var p = PlayoutPacer(maxLeadMillis: 80)
        let ms: UInt64 = 1_000_000
        for i in 0..<4 { p.didSend(now: UInt64(i) * ms, continuesResponse: i > 0) }
        #expect(!p.canSend(now: 4 * ms))
        p.cleared(now: 5 * ms)
        #expect(p.lead(now: 5 * ms) == 0 && p.canSend(now: 5 * ms))
    }

    @Test("the frame ring grows by doubling up to its bound, keeping frames in order, then refuses")
    func ringGrows() {
        let r = FrameRing(frameBytes: 2, capacity: 2, maxCapacity: 8)
        var pushed: Int64 = 0
        while true {
            if r.isFull && !r.grow() { break }
            #expect([UInt8(pushed), UInt8(pushed)].withUnsafeBytes { r.tryPush($0, tag: pushed) })
            pushed += 1
            if pushed == 3 { r.removeFirst() } // wrap the ring before it grows
        }
        #expect(r.capacity == 8 && r.count == 8)
        #expect(![UInt8(9), 9].withUnsafeBytes { r.tryPush($0, tag: 9) })
        for expected in Int64(1)..<pushed {
            #expect(r.firstTag == expected && r.first.map(Array.init) == [UInt8(expected), UInt8(expected)])
            r.removeFirst()
        }
    }

    @Test("the frame ring refuses when full and empties on removeAll")
    func ring() {
        let r = FrameRing(frameBytes: 4, capacity: 3) // rounds up to 4
        for i in 0..<4 { #expect([UInt8](repeating: UInt8(i), count: 4).withUnsafeBytes { r.tryPush($0, tag: Int64(i)) }) }
        #expect(![UInt8](repeating: 9, count: 4).withUnsafeBytes { r.tryPush($0, tag: 9) })
        #expect(r.firstTag == 0 && r.first.map(Array.init) == [0, 0, 0, 0])
        r.removeFirst()
        #expect(r.firstTag == 1 && r.count == 3)
        #expect(r.removeAll() == 3 && r.isEmpty)
    }
}
