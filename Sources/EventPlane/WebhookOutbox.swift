// Outgoing webhooks (shared/protocols/other-webhooks.md §6-§7): subscriptions managed through `/api/v1/webhooks`,
// every matching event written to a persisted outbox when it is published, and a worker that delivers it signed per
// Standard Webhooks (`webhook-id` = the event id, stable across retries; `webhook-timestamp`; `webhook-signature:
// v1,<base64 HMAC-SHA256>` over "id.timestamp.body" with the base64 key after `whsec_`), retries failures on a
// back-off schedule with jitter (and `Retry-After`), dead-letters after the last attempt, and disables an endpoint
// that answers 410. The schedule lives in SQLite, so a restart or a crash loses nothing: delivery is at least once,
// idempotent by `webhook-id`.
import Foundation
import HTTPClient
import Logging
import Signing
import Store
import Synchronization
import WireFormats

/// Schema (appended to the event log's migrations).
public enum WebhookSchema {
    public static let migrations = [
        """
        CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY, tenant TEXT NOT NULL, url TEXT NOT NULL, event_types TEXT NOT NULL,
            secret TEXT NOT NULL, enabled INTEGER NOT NULL, created_ms INTEGER NOT NULL
        );
        CREATE TABLE webhook_outbox (
            event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL,
            next_at_ms INTEGER NOT NULL, state TEXT NOT NULL, last_status INTEGER, last_error TEXT, updated_ms INTEGER NOT NULL,
            PRIMARY KEY (event_id, endpoint_id)
        );
        CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_at_ms);
        CREATE TABLE webhook_attempts (
            event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL,
            status INTEGER, error TEXT, duration_ms INTEGER NOT NULL
        );
        CREATE INDEX webhook_attempts_event ON webhook_attempts (endpoint_id, event_id);
        """,
    ]
}

/// A webhook subscription.
public struct WebhookEndpoint: Sendable, Equatable {
    public var id: String
    public var tenant: String
    public var url: String
    /// Event types, or ["*"] for all.
    public var eventTypes: [String]
    /// `whsec_` + base64 of the key.
    public var secret: String
    public var enabled: Bool

    func wants(_ type: String) -> Bool { eventTypes.contains("*") || eventTypes.contains(type) }

    var json: String {
        "{\"id\":\(JSONString.quote(id)),\"tenant\":\(JSONString.quote(tenant)),\"url\":\(JSONString.quote(url)),\"event_types\":[\(eventTypes.map(JSONString.quote).joined(separator: ","))],\"enabled\":\(enabled)}"
    }
}

/// Standard Webhooks signing.
public enum StandardWebhooks {
    /// `v1,<base64>` for `secret` (`whsec_…`), or nil for a secret that is not `whsec_` + base64.
    public static func signature(secret: String, id: String, timestamp: Int64, body: [UInt8]) -> String? {
        guard secret.hasPrefix("whsec_"), let key = Base64.decode(String(secret.dropFirst(6))), !key.isEmpty else { return nil }
        let content = Array("\(id).\(timestamp).".utf8) + body
        return "v1," + Base64.encode(Signing.hmac(.sha256, key: key, message: content))
    }

    /// A new secret: 32 random bytes.
    public static func newSecret() -> String { "whsec_" + Base64.encode(Signing.randomBytes(32)) }
}

/// The outbox and its delivery worker.
public final class WebhookOutbox: Sendable {
    let database: Database
    let http: HTTPClient
    let logger: Logger
    /// Delays before each retry (seconds); attempts = 1 + count.
    let schedule: [Double]
    let now: @Sendable () -> Double
    private let endpoints = Mutex<[WebhookEndpoint]>([])
    private let inFlight = Mutex<Set<String>>([])
    private let stopping = Atomic<Bool>(false)
    public let delivered = Atomic<Int>(0)
    public let failedAttempts = Atomic<Int>(0)
    public let deadLettered = Atomic<Int>(0)

    public init(database: Database, http: HTTPClient, logger: Logger, schedule: [Double],
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        self.database = database
        self.http = http
        self.logger = logger
        self.schedule = schedule
        self.now = now
        let rows = try database.readBlocking { c throws(StoreError) in
            try c.query("SELECT id, tenant, url, event_types, secret, enabled FROM webhook_endpoints ORDER BY created_ms")
        }
        endpoints.withLock { $0 = rows.compactMap(Self.endpoint) }
    }

    static func endpoint(_ r: [SQLValue]) -> WebhookEndpoint? {
        guard r.count == 6, case .text(let id) = r[0], case .text(let tenant) = r[1], case .text(let url) = r[2],
              case .text(let types) = r[3], case .text(let secret) = r[4], case .int(let enabled) = r[5] else { return nil }
        return WebhookEndpoint(id: id, tenant: tenant, url: url, eventTypes: types.split(separator: ",").map(String.init), secret: secret, enabled: enabled != 0)
    }

    var nowMillis: Int64 { Int64((now() * 1000).rounded()) }

    // MARK: - Subscriptions

    public func create(tenant: String, url: String, eventTypes: [String], secret: String?) async throws -> WebhookEndpoint {
        let e = WebhookEndpoint(id: "wh_" + Signing.hex(Signing.randomBytes(12)), tenant: tenant, url: url,
                                eventTypes: eventTypes.isEmpty ? ["*"] : eventTypes, secret: secret ?? StandardWebhooks.newSecret(), enabled: true)
        let created = nowMillis
        try await database.write { c throws(StoreError) in
            try c.query("INSERT INTO webhook_endpoints (id, tenant, url, event_types, secret, enabled, created_ms) VALUES (?, ?, ?, ?, ?, 1, ?)",
                        [.text(e.id), .text(e.tenant), .text(e.url), .text(e.eventTypes.joined(separator: ",")), .text(e.secret), .int(created)])
        }
        endpoints.withLock { $0.append(e) }
        return e
    }

    public func list() -> [WebhookEndpoint] { endpoints.withLock { $0 } }

    public func delete(id: String) async throws -> Bool {
        guard endpoints.withLock({ $0.contains { $0.id == id } }) else { return false }
        try await database.write { c throws(StoreError) in
            try c.query("DELETE FROM webhook_endpoints WHERE id = ?", [.text(id)])
            try c.query("UPDATE webhook_outbox SET state = 'cancelled' WHERE endpoint_id = ? AND state = 'pending'", [.text(id)])
        }
        endpoints.withLock { $0.removeAll { $0.id == id } }
        return true
    }

    // MARK: - Enqueue (from publishers, any thread)

    /// Puts an event in the outbox of every enabled endpoint of its tenant that wants its type (joins the next
    /// group commit; called where the event is published).
    func enqueue(eventID: String, type: String, tenant: String, payload: String) {
        let targets = endpoints.withLock { $0.filter { $0.enabled && $0.tenant == tenant && $0.wants(type) } }
        guard !targets.isEmpty else { return }
        let at = nowMillis
        database.enqueueWrite { c throws(StoreError) in
            for t in targets {
                try c.query("INSERT OR IGNORE INTO webhook_outbox (event_id, endpoint_id, payload, attempts, next_at_ms, state, updated_ms) VALUES (?, ?, ?, 0, ?, 'pending', ?)",
                            [.text(eventID), .text(t.id), .text(payload), .int(at), .int(at)])
            }
        }
    }

    // MARK: - Delivery

    /// Runs the worker until `drain` or the store closes: every 100 ms, delivers what is due (up to 16 at once).
    public func run() async {
        while !Task.isCancelled && !stopping.load(ordering: .acquiring) {
            do {
                try await deliverDue()
            } catch {
                return // the store closed
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Graceful shutdown: starts no new delivery and waits (up to `timeout`) for those in flight to finish and be
    /// recorded, so a restart does not send them again. What is still pending stays in the outbox.
    public func drain(timeout: Duration) async {
        stopping.store(true, ordering: .releasing)
        let deadline = ContinuousClock.now + timeout
        while !inFlight.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    struct Due: Sendable {
        let eventID: String, endpointID: String, payload: String, attempts: Int64
    }

    func deliverDue() async throws {
        let at = nowMillis
        let rows = try await database.read { c throws(StoreError) in
            try c.query("SELECT event_id, endpoint_id, payload, attempts FROM webhook_outbox WHERE state = 'pending' AND next_at_ms <= ? ORDER BY next_at_ms LIMIT 64",
                        [.int(at)])
        }
        let due: [Due] = rows.compactMap { r in
            guard case .text(let e) = r[0], case .text(let p) = r[1], case .text(let body) = r[2], case .int(let n) = r[3] else { return nil }
            return Due(eventID: e, endpointID: p, payload: body, attempts: n)
        }.filter { d in !stopping.load(ordering: .relaxed) && inFlight.withLock { $0.insert(d.eventID + "/" + d.endpointID).inserted } }
        guard !due.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for d in due {
                if running >= 16 { await group.next(); running -= 1 }
                group.addTask { await self.attempt(d) }
                running += 1
            }
        }
    }

    func attempt(_ d: Due) async {
        defer { _ = inFlight.withLock { $0.remove(d.eventID + "/" + d.endpointID) } }
        guard let endpoint = endpoints.withLock({ $0.first { $0.id == d.endpointID } }) else { return }
        let body = Array(d.payload.utf8)
        let timestamp = Int64(now())
        let started = Date()
        var status: Int?
        var errorText: String?
        var retryAfter: Double?
        if let signature = StandardWebhooks.signature(secret: endpoint.secret, id: d.eventID, timestamp: timestamp, body: body) {
            do {
                let r = try await http.execute(HTTPClientRequest(method: "POST", url: endpoint.url, headers: [
                    ("Content-Type", "application/json"), ("webhook-id", d.eventID), ("webhook-timestamp", String(timestamp)),
                    ("webhook-signature", signature), ("User-Agent", "patchbay-webhooks"),
                ], body: body, timeout: .seconds(15)))
                status = r.status
                retryAfter = r.header("retry-after").flatMap(Double.init)
            } catch {
                errorText = "\(error)"
            }
        } else {
            errorText = "the endpoint's secret is not whsec_ + base64"
        }
        let tookMillis = Int64(Date().timeIntervalSince(started) * 1000)
        let attempt = d.attempts + 1
        let ok = status.map { (200..<300).contains($0) } ?? false
        let gone = status == 410
        let at = nowMillis
        var state = "pending", nextAt = at
        if ok {
            state = "delivered"
            delivered.add(1, ordering: .relaxed)
        } else if gone || Int(attempt) > schedule.count {
            state = "dead"
            deadLettered.add(1, ordering: .relaxed)
            failedAttempts.add(1, ordering: .relaxed)
            logger.warning("webhook dead-lettered", metadata: ["webhook.endpoint": "\(d.endpointID)", "event.id": "\(d.eventID)",
                                                               "http.status": "\(status.map(String.init) ?? "-")"])
        } else {
            failedAttempts.add(1, ordering: .relaxed)
            // Exponential schedule, up to 10 % jitter, or the receiver's Retry-After when later.
            var delay = schedule[Int(attempt) - 1] * (1 + Double.random(in: 0...0.1))
            if let retryAfter { delay = max(delay, min(retryAfter, 3600)) }
            nextAt = at + Int64(delay * 1000)
        }
        let s = state, n = nextAt
        let statusValue: SQLValue = status.map { .int(Int64($0)) } ?? .null
        let errorValue: SQLValue = errorText.map { .text($0) } ?? .null
        try? await database.write { c throws(StoreError) in
            try c.query("UPDATE webhook_outbox SET attempts = ?, state = ?, next_at_ms = ?, last_status = ?, last_error = ?, updated_ms = ? WHERE event_id = ? AND endpoint_id = ?",
                        [.int(attempt), .text(s), .int(n), statusValue, errorValue, .int(at), .text(d.eventID), .text(d.endpointID)])
            try c.query("INSERT INTO webhook_attempts (event_id, endpoint_id, attempt, at_ms, status, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [.text(d.eventID), .text(d.endpointID), .int(attempt), .int(at), statusValue, errorValue, .int(tookMillis)])
            if gone { try c.query("UPDATE webhook_endpoints SET enabled = 0 WHERE id = ?", [.text(d.endpointID)]) }
        }
        if gone { endpoints.withLock { list in if let i = list.firstIndex(where: { $0.id == d.endpointID }) { list[i].enabled = false } } }
    }

    /// The deliveries of an endpoint (newest first) with their attempts, as JSON.
    public func deliveriesJSON(endpointID: String, limit: Int) async throws -> String {
        try await database.read { c throws(StoreError) in
            let rows = try c.query("SELECT event_id, attempts, state, last_status, last_error, next_at_ms, updated_ms FROM webhook_outbox WHERE endpoint_id = ? ORDER BY updated_ms DESC LIMIT ?",
                                   [.text(endpointID), .int(Int64(limit))])
            var items: [String] = []
            for r in rows {
                guard case .text(let event) = r[0], case .int(let attempts) = r[1], case .text(let state) = r[2] else { continue }
                let tries = try c.query("SELECT attempt, at_ms, status, error, duration_ms FROM webhook_attempts WHERE endpoint_id = ? AND event_id = ? ORDER BY attempt",
                                        [.text(endpointID), .text(event)])
                let list = tries.map { t -> String in
                    func v(_ x: SQLValue) -> String {
                        switch x { case .int(let n): String(n); case .text(let s): JSONString.quote(s); case .null: "null" }
                    }
                    return "{\"attempt\":\(v(t[0])),\"at_ms\":\(v(t[1])),\"status\":\(v(t[2])),\"error\":\(v(t[3])),\"duration_ms\":\(v(t[4]))}"
                }.joined(separator: ",")
                let status: String = { if case .int(let n) = r[3] { return String(n) }; return "null" }()
                items.append("{\"event_id\":\(JSONString.quote(event)),\"state\":\(JSONString.quote(state)),\"attempts\":\(attempts),\"last_status\":\(status),\"history\":[\(list)]}")
            }
            return "{\"deliveries\":[" + items.joined(separator: ",") + "]}"
        }
    }
}
