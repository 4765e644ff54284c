// Pusher-format server webhooks (pusher-channels.md §10), for consumers written against Pusher's: channel_occupied,
// channel_vacated, member_added, member_removed, client_event and cache_miss, POSTed as
// `{"time_ms":…,"events":[…]}` with `X-Pusher-Key` and `X-Pusher-Signature` (HMAC-SHA256 of the body with the app
// secret). As Pusher does: channel_vacated and member_removed wait 3 s and are dropped, with the occupied / added
// that undoes them, when the channel or member comes back within that time (a page reload is not two events);
// failed deliveries are retried with back-off for 5 minutes. Events of one app go out in order, in batches of up
// to 100 gathered over 50 ms. Patchbay's own events use the durable Standard Webhooks outbox instead.
import Foundation
import HTTPClient
import Logging
import Signing
import Synchronization
import WireFormats

public final class PusherWebhooks: Sendable {
    struct Delayed {
        var app: String
        var json: String
        var due: Double
        /// Order of arrival (member_removed before the channel_vacated it caused).
        var order: Int
    }
    struct State {
        /// App id -> events ready to send, in order.
        var ready: [String: [String]] = [:]
        /// Removals waiting out their 3 s, by "app \0 channel" (vacated) or "app \0 channel \0 user" (member).
        var delayed: [String: Delayed] = [:]
        /// Apps with a POST under way (one at a time per app keeps their order).
        var sending: Set<String> = []
        var stopped = false
        var nextOrder = 0
    }

    let apps: [String: PusherAppConfig]
    let http: HTTPClient
    let logger: Logger
    let now: @Sendable () -> Double
    private let state = Mutex(State())
    public let delivered = Atomic<Int>(0)
    public let failedAttempts = Atomic<Int>(0)
    public let dropped = Atomic<Int>(0)

    static let removalDelay = 3.0
    static let retryWindow = 300.0
    static let maxBatch = 100

    /// Only apps with a `webhookURL` get webhooks.
    init(apps: [PusherAppConfig], http: HTTPClient, logger: Logger, now: @escaping @Sendable () -> Double) {
        self.apps = Dictionary(apps.filter { $0.webhookURL != nil }.map { ($0.appID, $0) }, uniquingKeysWith: { a, _ in a })
        self.http = http
        self.logger = logger
        self.now = now
    }

    func wants(_ app: String, _ channel: String) -> Bool { apps[app] != nil && !channel.hasPrefix("#") }

    private func add(_ app: String, _ json: String) {
        state.withLock { $0.ready[app, default: []].append(json) }
    }

    /// Sends `json` unless it undoes a removal still waiting (then neither goes).
    private func addUndoing(_ app: String, key: String, _ json: String) {
        state.withLock { st in
            if st.delayed.removeValue(forKey: key) == nil { st.ready[app, default: []].append(json) }
        }
    }

    private func delay(_ app: String, key: String, _ json: String) {
        let due = now() + Self.removalDelay
        state.withLock { st in
            st.delayed[key] = Delayed(app: app, json: json, due: due, order: st.nextOrder)
            st.nextOrder += 1
        }
    }

    func channelOccupied(app: String, channel: String) {
        guard wants(app, channel) else { return }
        addUndoing(app, key: app + "\u{0}" + channel, "{\"name\":\"channel_occupied\",\"channel\":\(JSONString.quote(channel))}")
    }

    func channelVacated(app: String, channel: String) {
        guard wants(app, channel) else { return }
        delay(app, key: app + "\u{0}" + channel, "{\"name\":\"channel_vacated\",\"channel\":\(JSONString.quote(channel))}")
    }

    func memberAdded(app: String, channel: String, user: String) {
        guard wants(app, channel) else { return }
        addUndoing(app, key: app + "\u{0}" + channel + "\u{0}" + user,
                   "{\"name\":\"member_added\",\"channel\":\(JSONString.quote(channel)),\"user_id\":\(JSONString.quote(user))}")
    }

    func memberRemoved(app: String, channel: String, user: String) {
        guard wants(app, channel) else { return }
        delay(app, key: app + "\u{0}" + channel + "\u{0}" + user,
              "{\"name\":\"member_removed\",\"channel\":\(JSONString.quote(channel)),\"user_id\":\(JSONString.quote(user))}")
    }

    /// `data`: the client event's data as a string (JSON text), as Pusher sends it.
    func clientEvent(app: String, channel: String, event: String, data: String, socketID: String, user: String?) {
        guard wants(app, channel) else { return }
        var json = "{\"name\":\"client_event\",\"channel\":\(JSONString.quote(channel)),\"event\":\(JSONString.quote(event)),"
            + "\"data\":\(JSONString.quote(data)),\"socket_id\":\(JSONString.quote(socketID))"
        if let user { json += ",\"user_id\":\(JSONString.quote(user))" }
        add(app, json + "}")
    }

    func cacheMiss(app: String, channel: String) {
        guard wants(app, channel) else { return }
        add(app, "{\"name\":\"cache_miss\",\"channel\":\(JSONString.quote(channel))}")
    }

    /// Every 50 ms: removals whose 3 s are over become ready; each app without a POST under way sends what it has.
    func run() async {
        while true {
            try? await Task.sleep(for: .milliseconds(50))
            let t = now()
            let batches: [(String, [String])]? = state.withLock { st in
                if st.stopped { return nil }
                for (key, d) in st.delayed.filter({ $0.value.due <= t }).sorted(by: { $0.value.order < $1.value.order }) {
                    st.ready[d.app, default: []].append(d.json)
                    st.delayed[key] = nil
                }
                var out: [(String, [String])] = []
                for (app, events) in st.ready where !events.isEmpty && !st.sending.contains(app) {
                    let n = min(events.count, Self.maxBatch)
                    out.append((app, Array(events.prefix(n))))
                    st.ready[app] = Array(events.dropFirst(n))
                    st.sending.insert(app)
                }
                return out
            }
            guard let batches else { return }
            for (app, events) in batches {
                Task { [self] in
                    await deliver(app: app, events: events)
                    state.withLock { _ = $0.sending.remove(app) }
                }
            }
        }
    }

    /// Stops the loop (graceful shutdown); what is not sent yet is dropped, as these webhooks are not durable.
    func stop() { state.withLock { $0.stopped = true } }

    /// One batch, retried with back-off (1, 2, 4 … 60 s) for 5 minutes; `time_ms` is fresh on every attempt.
    func deliver(app appID: String, events: [String]) async {
        guard let app = apps[appID], let url = app.webhookURL else { return }
        let start = now()
        var wait = 1.0
        while true {
            let body = Array("{\"time_ms\":\(Int64((now() * 1000).rounded())),\"events\":[\(events.joined(separator: ","))]}".utf8)
            let signature = Signing.hex(Signing.hmac(.sha256, key: Array(app.secret.utf8), message: body))
            var request = HTTPClientRequest(method: "POST", url: url, headers: [("Content-Type", "application/json"), ("X-Pusher-Key", app.key),
                                                                                ("X-Pusher-Signature", signature)], body: body)
            request.timeout = .seconds(15)
            let status = (try? await http.execute(request))?.status ?? 0
            if (200..<300).contains(status) {
                delivered.add(events.count, ordering: .relaxed)
                return
            }
            failedAttempts.add(1, ordering: .relaxed)
            guard now() - start + wait <= Self.retryWindow, !state.withLock({ $0.stopped }) else {
                dropped.add(events.count, ordering: .relaxed)
                logger.warning("Pusher webhook dropped after retrying", metadata: ["pusher.app_id": "\(appID)", "http.status": "\(status)",
                                                                                  "events": "\(events.count)"])
                return
            }
            try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
            wait = min(wait * 2, 60)
        }
    }
}
