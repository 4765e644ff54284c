// The Pusher HTTP API (pusher-channels.md §9) and channel authorization for dashboards (§6).
import Foundation
import Signing
import Transport
import WireFormats

extension EventPlane {
    static let maxDataBytes = 10_240
    static let maxChannelsPerEvent = 100
    static let maxBatch = 10

    /// Channels the HTTP API may publish to: any valid name, and `#server-to-user-{id}` (signed-in users' sockets).
    static func isPublishable(_ channel: String) -> Bool {
        PusherConnection.isValidChannelName(channel)
            || (channel.hasPrefix("#server-to-user-") && PusherConnection.isValidChannelName(String(channel.dropFirst(16))))
    }

    /// Pusher's request signature: auth_key, auth_timestamp within 600 s, auth_version 1.0, body_md5, and
    /// HMAC-SHA256 over METHOD\nPATH\nsorted params (as received, minus auth_signature). 401 on any failure.
    func verifiedApp(_ req: HTTPRequest) throws -> PusherAppConfig {
        let params = req.queryItems()
        // Without `{app_id}` in the path (the pusher Python library's terminate_user_connections), `auth_key` names it.
        let app: PusherAppConfig
        if let id = req.pathParameters["app_id"] {
            guard let a = apps.first(where: { $0.appID == id }) else { throw HTTPError(404, code: "unknown_app", message: "no app with id \(id)") }
            app = a
        } else {
            let key = params.first { $0.0 == "auth_key" }?.1 ?? ""
            guard let a = apps.first(where: { $0.key == key }) else { throw HTTPError(404, code: "unknown_app", message: "no app with key \(key)") }
            app = a
        }
        func value(_ name: String) -> String? { params.first { $0.0 == name }?.1 }
        func refuse(_ why: String) -> HTTPError {
            authFailures.add(1, ordering: .relaxed)
            return HTTPError(401, code: "unauthorized", message: why)
        }
        guard value("auth_key") == app.key else { throw refuse("auth_key does not match the app") }
        guard value("auth_version") == "1.0" else { throw refuse("auth_version must be 1.0") }
        guard let ts = value("auth_timestamp").flatMap(Double.init), abs(now() - ts) <= 600 else {
            throw refuse("auth_timestamp is missing or more than 600 s from the server's clock")
        }
        let md5 = Signing.hex(Signing.digest(.md5, req.body))
        if !req.body.isEmpty || value("body_md5") != nil {
            guard value("body_md5") == md5 else { throw refuse("body_md5 does not match the body") }
        }
        let query = params.filter { $0.0 != "auth_signature" }.map { ($0.0.lowercased(), $0.1) }
            .sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let signed = "\(req.method.rawValue)\n\(req.path)\n\(query)"
        let expected = Signing.hex(Signing.hmac(.sha256, key: app.secret, message: signed))
        guard let given = value("auth_signature"), Signing.constantTimeEqual(given, expected) else { throw refuse("Invalid signature") }
        return app
    }

    static func json(_ req: HTTPRequest) throws -> [String: Any] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(req.body))) as? [String: Any] else {
            throw HTTPError.badRequest("the body must be a JSON object")
        }
        return o
    }

    /// One validated event of a request.
    struct Trigger {
        var name: String
        var data: String
        var channels: [String]
        var socketID: String?
        var info: Set<String>
    }

    /// Checks one event of a request (400 / 413 as Pusher answers) without publishing anything.
    static func validate(_ o: [String: Any], channels: [String]) throws -> Trigger {
        guard let name = o["name"] as? String, !name.isEmpty, name.utf8.count <= 200 else {
            throw HTTPError(400, code: "bad_request", message: "name is required (at most 200 characters)")
        }
        guard !channels.isEmpty, channels.count <= Self.maxChannelsPerEvent, channels.allSatisfy(Self.isPublishable) else {
            throw HTTPError(400, code: "bad_request", message: "1 to 100 valid channel names are required")
        }
        if channels.count > 1 && channels.contains(where: { $0.hasPrefix("private-encrypted-") }) {
            throw HTTPError(400, code: "bad_request", message: "an event for a private-encrypted- channel must go to that channel alone")
        }
        let data: String
        if let s = o["data"] as? String { data = s }
        else if let d = o["data"], let j = try? JSONSerialization.data(withJSONObject: d, options: [.fragmentsAllowed]) { data = String(decoding: j, as: UTF8.self) }
        else { throw HTTPError(400, code: "bad_request", message: "data is required") }
        guard data.utf8.count <= Self.maxDataBytes else { throw HTTPError(413, code: "payload_too_large", message: "data is over 10 KB") }
        let info = Set(((o["info"] as? String) ?? "").split(separator: ",").map(String.init))
        return Trigger(name: name, data: data, channels: channels, socketID: o["socket_id"] as? String, info: info)
    }

    /// Publishes validated events in order, then stores all their rows in one transaction: the answer waits for the
    /// commit (a 2xx means stored) and a batch costs one commit, not one per event and channel.
    func publish(_ app: PusherAppConfig, _ triggers: [Trigger]) async throws {
        var rows: [EventLog.Row] = []
        for t in triggers {
            for channel in t.channels {
                if let row = emit(app: app, channel: channel, event: t.name, data: t.data, excluding: t.socketID) { rows.append(row) }
            }
            eventsPublished.add(1, ordering: .relaxed)
        }
        do {
            try await eventLog?.append(rows)
        } catch {
            throw HTTPError(503, code: "store_unavailable", message: "the event could not be stored: \(error)", headers: ["retry-after": "1"])
        }
    }

    /// The `info` attributes asked for one event: `{"user_count":…,"subscription_count":…}` per channel.
    func info(_ app: PusherAppConfig, _ t: Trigger) -> [(String, String)] {
        guard !t.info.isEmpty else { return [] }
        return t.channels.map { channel in
            let stats = hub.occupied(app: app.appID, prefix: channel).first { $0.name == channel }
            var parts: [String] = []
            if t.info.contains("user_count") && channel.hasPrefix("presence-") { parts.append("\"user_count\":\(stats?.users ?? 0)") }
            if t.info.contains("subscription_count") { parts.append("\"subscription_count\":\(stats?.subscriptions ?? 0)") }
            return (channel, "{" + parts.joined(separator: ",") + "}")
        }
    }

    func triggerEvents(_ req: HTTPRequest) async throws -> HTTPResponse {
        let app = try verifiedApp(req)
        let o = try Self.json(req)
        let t = try Self.validate(o, channels: (o["channels"] as? [String]) ?? (o["channel"] as? String).map { [$0] } ?? [])
        try await publish(app, [t])
        let info = info(app, t)
        if info.isEmpty { return .json(200, "{}") }
        return .json(200, "{\"channels\":{" + info.map { "\(JSONString.quote($0.0)):\($0.1)" }.joined(separator: ",") + "}}")
    }

    func triggerBatch(_ req: HTTPRequest) async throws -> HTTPResponse {
        let app = try verifiedApp(req)
        guard let batch = try Self.json(req)["batch"] as? [[String: Any]] else { throw HTTPError.badRequest("batch must be a list of events") }
        guard batch.count <= Self.maxBatch else { throw HTTPError(400, code: "bad_request", message: "at most 10 events per batch") }
        // Validate all before publishing any, so a bad batch publishes nothing.
        let triggers = try batch.map { o in
            guard let channel = o["channel"] as? String else { throw HTTPError.badRequest("each event needs name, channel and data") }
            return try Self.validate(o, channels: [channel])
        }
        try await publish(app, triggers)
        let results = triggers.map { info(app, $0).first?.1 ?? "{}" }
        return .json(200, triggers.contains { !$0.info.isEmpty } ? "{\"batch\":[" + results.joined(separator: ",") + "]}" : "{}")
    }

    func channelsInfo(_ req: HTTPRequest) throws -> HTTPResponse {
        let app = try verifiedApp(req)
        let prefix = req.queryValue("filter_by_prefix") ?? ""
        let info = Set((req.queryValue("info") ?? "").split(separator: ",").map(String.init))
        if info.contains("user_count") && !prefix.hasPrefix("presence-") {
            throw HTTPError(400, code: "bad_request", message: "info=user_count needs filter_by_prefix=presence-")
        }
        let body = hub.occupied(app: app.appID, prefix: prefix).map { c in
            "\(JSONString.quote(c.name)):" + (info.contains("user_count") ? "{\"user_count\":\(c.users)}" : "{}")
        }.joined(separator: ",")
        return .json(200, "{\"channels\":{\(body)}}")
    }

    func channelInfo(_ req: HTTPRequest) throws -> HTTPResponse {
        let app = try verifiedApp(req)
        let channel = req.pathParameters["channel"] ?? ""
        let info = Set((req.queryValue("info") ?? "").split(separator: ",").map(String.init))
        if info.contains("user_count") && !channel.hasPrefix("presence-") {
            throw HTTPError(400, code: "bad_request", message: "user_count is only for presence channels")
        }
        let stats = hub.occupied(app: app.appID, prefix: channel).first { $0.name == channel }
        var parts = ["\"occupied\":\(stats != nil)"]
        if info.contains("user_count") { parts.append("\"user_count\":\(stats?.users ?? 0)") }
        if info.contains("subscription_count") { parts.append("\"subscription_count\":\(stats?.subscriptions ?? 0)") }
        return .json(200, "{" + parts.joined(separator: ",") + "}")
    }

    func channelUsers(_ req: HTTPRequest) throws -> HTTPResponse {
        let app = try verifiedApp(req)
        let channel = req.pathParameters["channel"] ?? ""
        guard channel.hasPrefix("presence-") else { throw HTTPError(400, code: "bad_request", message: "users are only for presence channels") }
        let users = hub.users(app: app.appID, channel: channel).map { "{\"id\":\(JSONString.quote($0))}" }.joined(separator: ",")
        return .json(200, "{\"users\":[\(users)]}")
    }

    func terminate(_ req: HTTPRequest) throws -> HTTPResponse {
        let app = try verifiedApp(req)
        let user = req.pathParameters["user_id"] ?? ""
        for s in hub.sockets(app: app.appID, user: user) {
            let c = s.connection
            s.loop.execute { c.value.closeWithError(PusherError.unauthorized, "Connection terminated by the app") }
        }
        return .json(200, "{}")
    }

    /// `GET /api/v1/events?channel=&after=&limit=` and `app_id=` or `tenant=` (default: the first app) (Bearer API
    /// key): the logged events of a channel after a sequence number, and whether the log still reaches back that far.
    /// A tenant without a Pusher app has its events logged too, under its id.
    func loggedEvents(_ req: HTTPRequest) async throws -> HTTPResponse {
        try requireAPIKey(req)
        guard let log = eventLog else { throw HTTPError(503, code: "no_event_log", message: "the event log is not open") }
        guard let channel = req.queryValue("channel"), PusherConnection.isValidChannelName(channel) else {
            throw HTTPError.badRequest("channel is required")
        }
        let appID: String
        if let tenant = req.queryValue("tenant") {
            guard tenants.contains(tenant) else { throw HTTPError(404, code: "unknown_tenant", message: "no tenant \(tenant)") }
            appID = apps.first { $0.tenant == tenant }?.appID ?? Self.logKey(tenant: tenant)
        } else {
            appID = req.queryValue("app_id") ?? apps.first?.appID ?? ""
            guard apps.contains(where: { $0.appID == appID }) else { throw HTTPError(404, code: "unknown_app", message: "no app with id \(appID)") }
        }
        let after = Int64(req.queryValue("after") ?? "0") ?? -1
        let limit = Int(req.queryValue("limit") ?? "100") ?? -1
        guard after >= 0, (1...Self.maxReplayPerRequest).contains(limit) else {
            throw HTTPError(422, code: "invalid", message: "after must be >= 0 and limit 1 to \(Self.maxReplayPerRequest)")
        }
        let (events, oldest) = try await log.events(app: appID, channel: channel, after: after, limit: limit)
        let gap = oldest.map { $0 > after + 1 } ?? false
        let items = events.map { e in
            "{\"seq\":\(e.seq),\"event\":\(JSONString.quote(e.event)),\"data\":\(JSONString.quote(e.data)),\"created_ms\":\(e.createdMillis)}"
        }.joined(separator: ",")
        return .json(200, "{\"channel\":\(JSONString.quote(channel)),\"events\":[\(items)],\"oldest_seq\":\(oldest.map(String.init) ?? "null"),\"gap\":\(gap)}")
    }

    static let maxReplayPerRequest = 1000

    // MARK: - /api/v1/webhooks

    func requireOutbox() throws -> WebhookOutbox {
        guard let o = outbox else { throw HTTPError(503, code: "no_store", message: "the store is not open") }
        return o
    }

    func createWebhook(_ req: HTTPRequest) async throws -> HTTPResponse {
        try requireAPIKey(req)
        let outbox = try requireOutbox()
        let o = try Self.json(req)
        guard let url = o["url"] as? String, let u = URLComponents(string: url), ["http", "https"].contains(u.scheme?.lowercased() ?? ""),
              !(u.host ?? "").isEmpty else {
            throw HTTPError(422, code: "invalid", message: "url must be an absolute http(s) URL")
        }
        let types = o["event_types"] as? [String] ?? ["*"]
        guard types.allSatisfy({ $0 == "*" || $0.wholeMatch(of: /[a-z]+\.[a-z_]+/) != nil }) else {
            throw HTTPError(422, code: "invalid", message: "event_types are event names such as call.completed, or *")
        }
        let secret = o["secret"] as? String
        if let secret, StandardWebhooks.signature(secret: secret, id: "x", timestamp: 0, body: []) == nil {
            throw HTTPError(422, code: "invalid", message: "secret must be whsec_ followed by base64 (or omitted: one is generated)")
        }
        let tenant = o["tenant"] as? String ?? defaultTenant
        let e = try await outbox.create(tenant: tenant, url: url, eventTypes: types, secret: secret)
        // The secret is shown once, on creation.
        return .json(201, String(e.json.dropLast()) + ",\"secret\":\(JSONString.quote(e.secret))}")
    }

    func listWebhooks(_ req: HTTPRequest) throws -> HTTPResponse {
        try requireAPIKey(req)
        return .json(200, "{\"webhooks\":[" + (try requireOutbox()).list().map(\.json).joined(separator: ",") + "]}")
    }

    func deleteWebhook(_ req: HTTPRequest) async throws -> HTTPResponse {
        try requireAPIKey(req)
        guard try await requireOutbox().delete(id: req.pathParameters["id"] ?? "") else { throw HTTPError.notFound("no such webhook") }
        return HTTPResponse(status: 204)
    }

    func webhookDeliveries(_ req: HTTPRequest) async throws -> HTTPResponse {
        try requireAPIKey(req)
        let outbox = try requireOutbox()
        let id = req.pathParameters["id"] ?? ""
        guard outbox.list().contains(where: { $0.id == id }) else { throw HTTPError.notFound("no such webhook") }
        return .json(200, try await outbox.deliveriesJSON(endpointID: id, limit: min(500, Int(req.queryValue("limit") ?? "100") ?? 100)))
    }

    func requireAPIKey(_ req: HTTPRequest) throws {
        guard let header = req.headers["authorization"], header.hasPrefix("Bearer "),
              apiKeys.contains(where: { Signing.constantTimeEqual($0, String(header.dropFirst(7))) }) else {
            throw HTTPError(401, code: "unauthorized", message: "Authorization: Bearer <API key> is required")
        }
    }
}
