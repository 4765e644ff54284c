import Foundation
import Synchronization
import Testing
import TestSupport
@testable import Transport

/// A lock-protected value that closures on other threads can share.
final class Shared<Value: Sendable>: Sendable {
    let lock: Mutex<Value>
    init(_ value: Value) { lock = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&$0) } }
}

@Suite("Event loops: mailbox, timers, shutdown", .serialized)
struct EventLoopTests {
    @Test("Work handed over from many threads runs on the loop thread, in order per sender")
    func crossThreadHandOff() async throws {
        let server = try Support.server(loops: 1) { _ in }
        let loop = server.loops[0]
        let seen = Shared<[Int: [Int]]>([:])
        let offLoop = Shared<Int>(0)
        await withTaskGroup(of: Void.self) { group in
            for sender in 0..<8 {
                group.addTask {
                    for i in 0..<500 {
                        loop.execute {
                            if !loop.inEventLoop { offLoop.withLock { $0 += 1 } }
                            seen.withLock { $0[sender, default: []].append(i) }
                        }
                    }
                }
            }
        }
        #expect(await Support.eventually { seen.withLock { $0.values.reduce(0) { $0 + $1.count } } == 4000 })
        #expect(offLoop.withLock { $0 } == 0)
        for sender in 0..<8 { #expect(seen.withLock { $0[sender] } == Array(0..<500)) }
        #expect(!loop.inEventLoop)
        await server.shutdown()
    }

    @Test("Timers fire in deadline order on the loop; a cancelled timer never fires")
    func timers() async throws {
        let server = try Support.server(loops: 1) { _ in }
        let loop = server.loops[0]
        let fired = Shared<[String]>([])
        loop.execute {
            let now = EventLoop.monotonicNanos()
            loop.scheduleTimer(at: now + 30_000_000) { fired.withLock { $0.append("c") } }
            loop.scheduleTimer(at: now + 10_000_000) { fired.withLock { $0.append("a") } }
            let cancelled = loop.scheduleTimer(at: now + 15_000_000) { fired.withLock { $0.append("cancelled") } }
            loop.scheduleTimer(at: now + 20_000_000) { fired.withLock { $0.append("b") } }
            loop.scheduleTimer(at: now - 1_000_000) { fired.withLock { $0.append("past") } } // already due: runs first
            loop.cancelTimer(cancelled)
        }
        #expect(await Support.eventually { fired.withLock { $0.count } == 4 })
        try await Task.sleep(for: .milliseconds(50))
        #expect(fired.withLock { $0 } == ["past", "a", "b", "c"])
        await server.shutdown()
    }

    @Test("A reusable timer that keeps rescheduling itself into the past does not starve the loop's other work")
    func selfReschedulingTimer() async throws {
        let server = try Support.server(loops: 1) { _ in }
        let loop = server.loops[0]
        let fires = Shared<Int>(0)
        let stop = Shared<Bool>(false)
        loop.execute {
            let box = TimerBox()
            box.timer = loop.makeTimer {
                fires.withLock { $0 += 1 }
                if stop.withLock({ $0 }) { box.timer?.invalidate(); box.timer = nil } else { box.timer?.schedule(at: 1) } // long past
            }
            box.timer?.schedule(at: 1)
        }
        // Work posted from another thread still runs while the timer keeps firing.
        let ran = Shared<Bool>(false)
        try await Task.sleep(for: .milliseconds(20))
        loop.execute { ran.withLock { $0 = true } }
        #expect(await eventually { ran.withLock { $0 } })
        stop.withLock { $0 = true }
        #expect(fires.withLock { $0 } > 1)
        await server.shutdown()
    }

    @Test("A paced 20 ms timer chain keeps its deadlines (each next = previous + 20 ms) and never drifts")
    func pacedChain() async throws {
        let server = try Support.server(loops: 1) { _ in }
        let loop = server.loops[0]
        let ticks = Shared<[UInt64]>([])
        loop.execute {
            let start = EventLoop.monotonicNanos()
            ticks.withLock { $0.append(start) } // element 0: the anchor every deadline is computed from
            func tick(_ n: UInt64) {
                ticks.withLock { $0.append(EventLoop.monotonicNanos()) }
                if n < 10 { loop.scheduleTimer(at: start + (n + 1) * 20_000_000) { tick(n + 1) } }
            }
            loop.scheduleTimer(at: start + 20_000_000) { tick(1) }
        }
        #expect(await Support.eventually { ticks.withLock { $0.count } == 11 })
        let t = ticks.withLock { $0 }
        // Tick n never fires before its deadline start + n x 20 ms (50 us is the loop's timer slack). No upper bound
        // is asserted: how late a shared machine wakes us is a benchmark question, not a test one.
        for n in 1..<t.count { #expect(t[n] >= t[0] + UInt64(n) * 20_000_000 - 50_000, "tick \(n)") }
        await server.shutdown()
    }

    @Test("Graceful shutdown closes WebSockets with 1001, refuses new connections and lets an async request finish")
    func gracefulShutdown() async throws {
        let server = try Support.server { r in
            r.webSocket("/ws") { _, _ in EchoHandler() }
            r.onAsync(.GET, "/slow") { _ in
                try await Task.sleep(for: .milliseconds(300))
                return .text(200, "finished")
            }
        }
        let port = server.port
        let script = """
        import asyncio, socket, sys, websockets
        port = int(sys.argv[1])
        async def main():
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
            await ws.send("x"); await ws.recv()
            print("ready", flush=True)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as e:
                print("ws", e.rcvd.code if e.rcvd else "none", flush=True)
        asyncio.run(main())
        """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: Support.python)
        python.arguments = ["-c", script, String(port)]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        #expect(await Support.eventually { server.openWebSockets.load(ordering: .relaxed) == 1 })
        // The blocking client runs on a Dispatch thread: on the cooperative pool it could starve the handler's own
        // Task.sleep while other tests hold the pool's threads.
        let slow = Task {
            try await withCheckedThrowingContinuation { (k: CheckedContinuation<String, any Error>) in
                onOwnThread { k.resume(with: Result { try Support.raw(port: port, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n") }) }
            }
        }
        #expect(await Support.eventually { server.inFlightRequests.load(ordering: .relaxed) == 1 })
        await server.shutdown(timeout: .seconds(5))
        let answer = try await slow.value
        #expect(Support.status(answer) == 200)
        #expect(Support.body(answer) == "finished")
        #expect(answer.lowercased().contains("connection: close"))
        python.waitUntilExit()
        let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(lines.contains("ws 1001"), "\(lines)")
        #expect((try? Support.raw(port: port, "GET / HTTP/1.1\r\n\r\n")).map { $0.isEmpty } ?? true, "no one listens after shutdown")
    }
}

/// Holds a loop timer inside its own body (loop-owned).
final class TimerBox: @unchecked Sendable {
    var timer: LoopTimer?
}
