// events-bench: Pusher-protocol fan-out through a running Patchbay (pinned elsewhere by run-events.sh).
// N subscribers (our own lws client) on one public channel; events published through the signed HTTP API at a
// given rate, each carrying its send time; reports publish-to-receipt latency (all parties on one monotonic
// clock), deliveries per second, and Patchbay's CPU and memory from /proc (idle connections included).
import BenchKit
import Foundation
import HTTPClient
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

var args = CommandLine.arguments.dropFirst()
var host = "127.0.0.1:8080", pid: Int32 = 0, subscribers = 500, rate = 100, seconds = 10, mode = "fanout", publishers = 32
var slow = 0, batch = 1, lifetime = 5
while let a = args.popFirst() {
    let v = args.popFirst() ?? ""
    switch a {
    case "--patchbay": host = v
    case "--pid": pid = Int32(v) ?? 0
    case "--subscribers": subscribers = Int(v) ?? subscribers
    case "--rate": rate = Int(v) ?? rate
    case "--seconds": seconds = Int(v) ?? seconds
    case "--mode": mode = v
    case "--publishers": publishers = Int(v) ?? publishers
    case "--slow": slow = Int(v) ?? slow
    case "--batch": batch = Int(v) ?? batch
    case "--lifetime": lifetime = Int(v) ?? lifetime
    default: fatalError("unknown option \(a)")
    }
}

/// One subscriber: subscribes to "bench", records the latency of every "tick" (its data carries the send time).
final class Subscriber: WebSocketHandler, @unchecked Sendable {
    let latencies = Mutex<[UInt32]>([])
    let subscribed = Atomic<Bool>(false)
    func webSocketDidOpen(_ connection: WebSocketConnection) {
        connection.send(text: "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"bench\"}}")
    }
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        let now = monotonicNanos()
        let s = JSONScanner(message.bytes)
        guard let root = s.rootObject(), let ev = s.member("event", of: root) else { return }
        if s.equals(ev, "pusher_internal:subscription_succeeded") { subscribed.store(true, ordering: .relaxed); return }
        guard s.equals(ev, "tick"), let d = s.member("data", of: root), let text = s.string(d), let sent = UInt64(text) else { return }
        latencies.withLock { $0.append(UInt32(clamping: now &- sent)) }
    }
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {}
}

var logger = Logger(label: "events-bench")
logger.logLevel = .error
var settings = ServerConfiguration()
settings.host = "127.0.0.1"
settings.port = 0
settings.loops = 1
settings.maxWebSocketMessageBytes = 1 << 20
let clients = Server(configuration: settings, router: Router(), logger: logger)
try clients.start()
if mode == "churn" {
    try await churn(host: host, pid: pid, loop: clients.loops[0], connectsPerSecond: rate, seconds: seconds, lifetime: lifetime)
    exit(0)
}
let rssBefore = rssKiB(pid)
let subs = (0..<subscribers).map { _ in Subscriber() }
let loop = clients.loops[0]
for s in subs {
    let url = "ws://\(host)/app/pbkey123?protocol=7&client=bench"
    loop.execute { _ = loop.connectWebSocket(url: url, handler: s) }
}
let deadline = Date().addingTimeInterval(60)
while subs.contains(where: { !$0.subscribed.load(ordering: .relaxed) }) && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
let ready = subs.filter { $0.subscribed.load(ordering: .relaxed) }.count
try await Task.sleep(for: .seconds(2))
let rssIdle = rssKiB(pid)
let idleCPU0 = cpuTicks(pid), idleT0 = monotonicNanos()
try await Task.sleep(for: .seconds(5))
let idleCPU = (cpuTicks(pid) - idleCPU0) / Double(sysconf(Int32(_SC_CLK_TCK))) / (Double(monotonicNanos() - idleT0) / 1e9) * 100

// Publish `rate` events per second for `seconds`, signed like the pusher libraries.
let http = HTTPClient(logger: logger)
func publish(_ data: String, channel: String = "bench") async throws -> Int {
    let body = Array("{\"name\":\"tick\",\"channel\":\(JSONString.quote(channel)),\"data\":\(JSONString.quote(data))}".utf8)
    let md5 = Signing.hex(Signing.digest(.md5, body))
    let query = "auth_key=pbkey123&auth_timestamp=\(Int(Date().timeIntervalSince1970))&auth_version=1.0&body_md5=\(md5)"
    let sig = Signing.hex(Signing.hmac(.sha256, key: "pbsecret456", message: "POST\n/apps/4242/events\n\(query)"))
    return try await http.execute(HTTPClientRequest(method: "POST", url: "http://\(host)/apps/4242/events?\(query)&auth_signature=\(sig)",
                                                    headers: [("Content-Type", "application/json")], body: body)).status
}
/// `batch_events` with `count` events on one channel, signed like the pusher libraries.
func publishBatch(_ count: Int, channel: String) async throws -> Int {
    let events = (0..<count).map { "{\"name\":\"tick\",\"channel\":\(JSONString.quote(channel)),\"data\":\"b\($0)\"}" }
    let body = Array("{\"batch\":[\(events.joined(separator: ","))]}".utf8)
    let md5 = Signing.hex(Signing.digest(.md5, body))
    let query = "auth_key=pbkey123&auth_timestamp=\(Int(Date().timeIntervalSince1970))&auth_version=1.0&body_md5=\(md5)"
    let sig = Signing.hex(Signing.hmac(.sha256, key: "pbsecret456", message: "POST\n/apps/4242/batch_events\n\(query)"))
    return try await http.execute(HTTPClientRequest(method: "POST", url: "http://\(host)/apps/4242/batch_events?\(query)&auth_signature=\(sig)",
                                                    headers: [("Content-Type", "application/json")], body: body)).status
}
if mode == "publish" || mode == "replay" {
    try await otherModes()
    exit(0)
}
// Slow subscribers (`--slow N`): raw sockets with a 4 KiB receive buffer that read at 1 % of the channel's byte rate.
let slowReaders = try (0..<slow).map { _ in try SlowReader(host: host, channel: "bench") }
let slowDropped = SlowWatch(host: host, http: http)
if slow > 0 {
    try await Task.sleep(for: .milliseconds(200))
    for r in slowReaders { r.start(bytesPerSecond: max(1, rate * 90 / 100)) } // ~90-byte ticks: 1 % of rate * 90 B/s
    slowDropped.start()
}
let cpu0 = cpuTicks(pid), t0 = monotonicNanos()
var publishLatency: [Double] = []
var failures = 0
let interval = 1e9 / Double(rate)
for i in 0..<(rate * seconds) {
    let due = t0 + UInt64(Double(i) * interval)
    let now = monotonicNanos()
    if due > now { try await Task.sleep(for: .nanoseconds(Int(due - now))) }
    let sent = monotonicNanos()
    let status = try await publish(String(sent))
    publishLatency.append(Double(monotonicNanos() - sent) / 1e6)
    if status != 200 { failures += 1 }
}
try await Task.sleep(for: .seconds(1))
let elapsed = Double(monotonicNanos() - t0) / 1e9
let cpu = (cpuTicks(pid) - cpu0) / Double(sysconf(Int32(_SC_CLK_TCK))) / elapsed * 100
var all: [Double] = []
for s in subs { all += s.latencies.withLock { $0 }.map { Double($0) / 1e6 } }
all.sort()
publishLatency.sort()
let expected = ready * rate * seconds
print(String(format: "subscribers %d (%d subscribed), %d events/s for %d s; deliveries %d of %d (%.0f/s)", subscribers, ready, rate, seconds, all.count, expected, Double(all.count) / Double(seconds)))
print(String(format: "publish-to-receipt ms p50 %.3f p99 %.3f p99.9 %.3f; signed durable publish (HTTP round trip) ms p50 %.3f p99 %.3f; failures %d",
             percentile(all, 0.5), percentile(all, 0.99), percentile(all, 0.999), percentile(publishLatency, 0.5), percentile(publishLatency, 0.99), failures))
print(String(format: "patchbay idle: %.1f KiB per connection, %.2f %% CPU; under load %.1f %% CPU", (rssIdle - rssBefore) / Double(max(1, ready)), idleCPU, cpu))
if slow > 0 {
    let cut = slowDropped.firstDropNanos.load(ordering: .relaxed)
    print(String(format: "slow subscribers: %d, reading %d B/s each; cut off (4100) %@ after publishing began; %d of them dropped",
                 slow, max(1, rate * 90 / 100), cut == 0 ? "not" : String(format: "%.2f s", Double(cut - t0) / 1e9), slowDropped.dropped.load(ordering: .relaxed)))
}
http.shutdown()
await clients.shutdown(timeout: .seconds(2))

/// `--mode publish`: `publishers` concurrent signed, durable publishes for `seconds` (group commit at work).
/// `--mode replay`: 1,000 events published, then a new subscriber asks for all of them (`patchbay_after: 0`).
@MainActor
func otherModes() async throws {
    let seconds = seconds, pid = pid, publishers = publishers, host = host, loop = loop, batch = batch
    if mode == "publish" {
        final class Stats: Sendable {
            let latencies = Mutex<[Double]>([])
            let count = Atomic<Int>(0), failed = Atomic<Int>(0)
        }
        let stats = Stats()
        let end = monotonicNanos() + UInt64(seconds) * 1_000_000_000
        let cpu0 = cpuTicks(pid), t0 = monotonicNanos()
        await withTaskGroup(of: Void.self) { group in
            for p in 0..<publishers {
                group.addTask {
                    while monotonicNanos() < end {
                        let start = monotonicNanos()
                        let status = batch > 1 ? ((try? await publishBatch(batch, channel: "durable-\(p % 8)")) ?? 0)
                                               : ((try? await publish("p\(p)", channel: "durable-\(p % 8)")) ?? 0)
                        stats.latencies.withLock { $0.append(Double(monotonicNanos() - start) / 1e6) }
                        if status == 200 { stats.count.add(batch, ordering: .relaxed) } else { stats.failed.add(1, ordering: .relaxed) }
                    }
                }
            }
        }
        let elapsed = Double(monotonicNanos() - t0) / 1e9
        let cpu = (cpuTicks(pid) - cpu0) / Double(sysconf(Int32(_SC_CLK_TCK))) / elapsed * 100
        let sorted = stats.latencies.withLock { $0 }.sorted()
        print(String(format: "durable signed publishes (%d per request): %d publishers, %.0f events/s, request latency ms p50 %.2f p99 %.2f p99.9 %.2f, failures %d, patchbay CPU %.1f %%",
                     batch, publishers, Double(stats.count.load(ordering: .relaxed)) / elapsed, percentile(sorted, 0.5), percentile(sorted, 0.99),
                     percentile(sorted, 0.999), stats.failed.load(ordering: .relaxed), cpu))
        return
    }
    // Replay: 1,000 events on one channel, then a late subscriber.
    for i in 0..<1000 { _ = try await publish("r\(i)", channel: "replay-ch") }
    final class Replayer: WebSocketHandler, @unchecked Sendable {
        let received = Atomic<Int>(0)
        let doneAt = Atomic<UInt64>(0)
        var startedAt: UInt64 = 0
        func webSocketDidOpen(_ connection: WebSocketConnection) {
            startedAt = monotonicNanos()
            connection.send(text: "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"replay-ch\",\"patchbay_after\":0}}")
        }
        func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
            let s = JSONScanner(message.bytes)
            guard let root = s.rootObject(), let ev = s.member("event", of: root) else { return }
            if s.equals(ev, "tick") { received.add(1, ordering: .relaxed) }
            if s.equals(ev, "patchbay:replay_done") { doneAt.store(monotonicNanos() - startedAt, ordering: .relaxed) }
        }
        func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {}
    }
    var times: [Double] = []
    for _ in 0..<5 {
        let r = Replayer()
        let url = "ws://\(host)/app/pbkey123?protocol=7&client=bench"
        loop.execute { _ = loop.connectWebSocket(url: url, handler: r) }
        let deadline = Date().addingTimeInterval(10)
        while r.doneAt.load(ordering: .relaxed) == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        times.append(Double(r.doneAt.load(ordering: .relaxed)) / 1e6)
        print(String(format: "replay of %d missed events: %.2f ms from subscribe to replay_done (includes the socket's subscribe round trip)",
                     r.received.load(ordering: .relaxed), times.last!))
    }
}
