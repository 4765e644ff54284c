// `--mode churn`: `rate` new connections a second, each subscribing to one of twenty presence channels (signed like a
// dashboard's backend would) and closing after `lifetime` seconds, for `seconds`. Counts every failure (a refused
// or failed subscription, a `pusher:error`, a close we did not ask for, a connection that never got established) and
// samples Patchbay's memory and CPU every 30 s; at the end every presence channel must be empty again.
import BenchKit
import Foundation
import HTTPClient
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

final class ChurnStats: Sendable {
    let opened = Atomic<Int>(0)
    let subscribed = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let unexpectedCloses = Atomic<Int>(0)
    let memberEvents = Atomic<Int>(0)
}

final class ChurnClient: WebSocketHandler, @unchecked Sendable {
    let channel: String
    let user: String
    let stats: ChurnStats
    var connection: WebSocketConnection?
    var closing = false
    var established = false

    init(channel: String, user: String, stats: ChurnStats) {
        self.channel = channel
        self.user = user
        self.stats = stats
    }

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        self.connection = connection
        stats.opened.add(1, ordering: .relaxed)
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        let s = JSONScanner(message.bytes)
        guard let root = s.rootObject(), let ev = s.member("event", of: root) else { stats.errors.add(1, ordering: .relaxed); return }
        if s.equals(ev, "pusher:connection_established") {
            established = true
            guard let d = s.member("data", of: root), let inner = s.string(d) else { stats.errors.add(1, ordering: .relaxed); return }
            let bytes = Array(inner.utf8)
            let socketID: String? = bytes.withUnsafeBytes { raw in
                let t = JSONScanner(raw)
                guard let r = t.rootObject(), let v = t.member("socket_id", of: r) else { return nil }
                return t.string(v)
            }
            guard let socketID else { stats.errors.add(1, ordering: .relaxed); return }
            let channelData = "{\"user_id\":\"\(user)\",\"user_info\":{\"name\":\"bench\"}}"
            let auth = "pbkey123:" + Signing.hex(Signing.hmac(.sha256, key: "pbsecret456", message: "\(socketID):\(channel):\(channelData)"))
            connection.send(text: "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"\(channel)\",\"auth\":\"\(auth)\",\"channel_data\":\(JSONString.quote(channelData))}}")
        } else if s.equals(ev, "pusher_internal:subscription_succeeded") {
            stats.subscribed.add(1, ordering: .relaxed)
        } else if s.equals(ev, "pusher_internal:member_added") || s.equals(ev, "pusher_internal:member_removed") {
            stats.memberEvents.add(1, ordering: .relaxed)
        } else if s.equals(ev, "pusher:error") || s.equals(ev, "pusher:subscription_error") {
            stats.errors.add(1, ordering: .relaxed)
        }
    }

    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        if !closing { stats.unexpectedCloses.add(1, ordering: .relaxed) }
        self.connection = nil
    }

    /// On the loop: close normally (counted as a failure if the connection never got established).
    func finish() {
        closing = true
        if !established { stats.errors.add(1, ordering: .relaxed) }
        connection?.close(.normal, reason: "churn")
    }
}

func churn(host: String, pid: Int32, loop: EventLoop, connectsPerSecond: Int, seconds: Int, lifetime: Int) async throws {
    let stats = ChurnStats()
    var live: [(due: UInt64, client: ChurnClient)] = []
    var head = 0
    let t0 = monotonicNanos()
    let end = t0 + UInt64(seconds) * 1_000_000_000
    var started = 0
    var nextReport = t0 + 30_000_000_000
    var cpuMark = cpuTicks(pid), timeMark = t0
    var rssSamples: [Double] = []
    let url = "ws://\(host)/app/pbkey123?protocol=7&client=churn"
    print("t(s)  opened  subscribed  errors  unexpected-closes  member-events  patchbay RSS (MiB)  CPU (%)")
    while true {
        let now = monotonicNanos()
        if now < end {
            let due = Int(Double(now - t0) / 1e9 * Double(connectsPerSecond))
            while started < due {
                // 20 channels; a user comes back every 4,000 connections (20 s at 200/s), long after its last socket
                // left, so every connection is a member_added to the channel's ~50 others and later a member_removed.
                let c = ChurnClient(channel: "presence-churn-\(started % 20)", user: "user-\(started % 4000)", stats: stats)
                live.append((now + UInt64(lifetime) * 1_000_000_000, c))
                loop.execute { _ = loop.connectWebSocket(url: url, handler: c) }
                started += 1
            }
        }
        while head < live.count && (live[head].due <= now || now >= end) {
            let c = live[head].client
            loop.execute { c.finish() }
            head += 1
        }
        if head > 10_000 { live.removeFirst(head); head = 0 }
        if now >= nextReport || (now >= end && head == live.count) {
            let rss = rssKiB(pid) / 1024
            rssSamples.append(rss)
            let cpu = (cpuTicks(pid) - cpuMark) / Double(sysconf(Int32(_SC_CLK_TCK))) / (Double(now - timeMark) / 1e9) * 100
            cpuMark = cpuTicks(pid)
            timeMark = now
            print(String(format: "%4.0f  %6d  %10d  %6d  %17d  %13d  %18.1f  %7.1f", Double(now - t0) / 1e9, stats.opened.load(ordering: .relaxed),
                         stats.subscribed.load(ordering: .relaxed), stats.errors.load(ordering: .relaxed), stats.unexpectedCloses.load(ordering: .relaxed),
                         stats.memberEvents.load(ordering: .relaxed), rss, cpu))
            nextReport += 30_000_000_000
            if now >= end && head == live.count { break }
        }
        try await Task.sleep(for: .milliseconds(5))
    }
    // Every presence channel must be empty once everybody has left.
    try await Task.sleep(for: .seconds(2))
    var logger = Logger(label: "churn")
    logger.logLevel = .error
    let http = HTTPClient(logger: logger)
    let query = "auth_key=pbkey123&auth_timestamp=\(Int(Date().timeIntervalSince1970))&auth_version=1.0&filter_by_prefix=presence-&info=user_count"
    let sig = Signing.hex(Signing.hmac(.sha256, key: "pbsecret456", message: "GET\n/apps/4242/channels\n\(query)"))
    let r = try await http.execute(HTTPClientRequest(method: "GET", url: "http://\(host)/apps/4242/channels?\(query)&auth_signature=\(sig)"))
    http.shutdown()
    let failures = stats.errors.load(ordering: .relaxed) + stats.unexpectedCloses.load(ordering: .relaxed) + (started - stats.subscribed.load(ordering: .relaxed))
    print(String(format: "churn: %d connections over %d s (%d/s, %d s each); %d failures; presence channels afterwards: %@; RSS first/last sample %.1f / %.1f MiB (max %.1f)",
                 started, seconds, connectsPerSecond, lifetime, failures, String(decoding: r.body, as: UTF8.self),
                 rssSamples.first ?? 0, rssSamples.last ?? 0, rssSamples.max() ?? 0))
}
