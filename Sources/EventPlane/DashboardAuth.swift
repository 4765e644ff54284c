// What a dashboard's backend would do for pusher-js (pusher-channels.md §6): `POST /pusher/auth` signs channel
// subscriptions, `POST /pusher/user-auth` signs `pusher:signin`. Two kinds of caller: a holder of a Patchbay API
// key (any app, any identity it names), or a browser holding a short-lived token issued by
// `POST /api/v1/auth-tokens` (its tenant's app only, and only as the user the token names: presence `channel_data`
// and sign-in `user_data` come from the token, not from the request).
import Foundation
import Signing
import Transport
import WireFormats

/// A short-lived dashboard token: `pbt_<base64url payload>.<base64url HMAC-SHA256>`, signed with a key derived from
/// the configured API keys (so every instance with the same configuration accepts it, and rotating the keys revokes
/// all tokens).
struct DashboardToken: Equatable {
    var tenant: String
    var userID: String
    /// `user_info` as compact JSON, or nil.
    var userInfo: String?
    /// Unix seconds.
    var expires: Int64

    static let prefix = "pbt_"
    static let maxTTL = 86_400

    static func signingKey(apiKeys: [String]) -> [UInt8]? {
        apiKeys.isEmpty ? nil : Signing.hmac(.sha256, key: "patchbay dashboard tokens v1", message: apiKeys.sorted().joined(separator: "\n"))
    }

    func encoded(key: [UInt8]) -> String {
        var payload = "{\"t\":\(JSONString.quote(tenant)),\"u\":\(JSONString.quote(userID)),\"e\":\(expires)"
        if let userInfo { payload += ",\"i\":\(userInfo)" }
        payload += "}"
        let body = Self.base64url(Array(payload.utf8))
        return Self.prefix + body + "." + Self.base64url(Signing.hmac(.sha256, key: key, message: Array(body.utf8)))
    }

    /// The token's claims when its signature is ours; `expired` says whether it is past `now`.
    static func decode(_ text: String, key: [UInt8]) -> DashboardToken? {
        guard text.hasPrefix(prefix) else { return nil }
        let parts = text.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let mac = unbase64url(String(parts[1])),
              Signing.constantTimeEqual(mac, Signing.hmac(.sha256, key: key, message: Array(parts[0].utf8))),
              let payload = unbase64url(String(parts[0])),
              let o = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any],
              let tenant = o["t"] as? String, let user = o["u"] as? String, let expires = (o["e"] as? NSNumber)?.int64Value else { return nil }
        let info = o["i"].flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed, .sortedKeys]) }
        return DashboardToken(tenant: tenant, userID: user, userInfo: info.map { String(decoding: $0, as: UTF8.self) }, expires: expires)
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        String(Base64.encode(bytes).compactMap { c -> Character? in c == "+" ? "-" : c == "/" ? "_" : c == "=" ? nil : c })
    }

    static func unbase64url(_ text: String) -> [UInt8]? {
        var s = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        while s.utf8.count % 4 != 0 { s += "=" }
        return Base64.decode(s)
    }
}

extension EventPlane {
    /// Who is asking: an API-key holder, or the user a valid token names.
    enum Caller {
        case apiKey
        case token(DashboardToken)
    }

    func caller(_ req: HTTPRequest) throws -> Caller {
        guard let header = req.headers["authorization"], header.hasPrefix("Bearer ") else {
            throw HTTPError(401, code: "unauthorized", message: "Authorization: Bearer <API key or dashboard token> is required")
        }
        let credential = String(header.dropFirst(7))
        if credential.hasPrefix(DashboardToken.prefix) {
            guard let key = DashboardToken.signingKey(apiKeys: apiKeys), let token = DashboardToken.decode(credential, key: key) else {
                authFailures.add(1, ordering: .relaxed)
                throw HTTPError(401, code: "unauthorized", message: "the dashboard token is not valid")
            }
            guard Double(token.expires) > now() else {
                authFailures.add(1, ordering: .relaxed)
                throw HTTPError(401, code: "token_expired", message: "the dashboard token has expired: ask for a new one")
            }
            return .token(token)
        }
        try requireAPIKey(req)
        return .apiKey
    }

    /// The request's fields: form-encoded (pusher-js, pysher) or JSON.
    static func fields(_ req: HTTPRequest) throws -> [String: String] {
        var fields: [String: String] = [:]
        if (req.headers["content-type"]?.lowercased() ?? "").hasPrefix("application/json") {
            for (k, v) in try json(req) {
                if let s = v as? String { fields[k] = s }
                else if JSONSerialization.isValidJSONObject(v), let d = try? JSONSerialization.data(withJSONObject: v) { fields[k] = String(decoding: d, as: UTF8.self) }
            }
        } else {
            for (k, v) in FormEncoding.decode(req.bodyText) { fields[k] = v }
        }
        return fields
    }

    /// The app a caller signs for. A token: its tenant's app (naming another app is refused 403). An API key: the
    /// app named by `app_key` (as in the socket URL), else the one whose tenant the channel names
    /// (`private-tenant-acme`), else the first.
    func signingApp(_ caller: Caller, fields: [String: String], channel: String?) throws -> PusherAppConfig {
        guard !apps.isEmpty else { throw HTTPError(404, code: "no_app", message: "no Pusher app is configured") }
        switch caller {
        case .token(let token):
            guard let app = apps.first(where: { $0.tenant == token.tenant }) else {
                throw HTTPError(404, code: "no_app", message: "tenant \(token.tenant) has no Pusher app")
            }
            if let key = fields["app_key"], key != app.key {
                throw HTTPError(403, code: "forbidden", message: "this token signs only for its tenant's app")
            }
            return app
        case .apiKey:
            if let key = fields["app_key"] {
                guard let app = apps.first(where: { $0.key == key }) else { throw HTTPError(404, code: "unknown_app", message: "no app with key \(key)") }
                return app
            }
            return channel.flatMap { c in apps.first { c.hasSuffix("-tenant-" + $0.tenant) } } ?? apps[0]
        }
    }

    static func socketID(_ fields: [String: String]) throws -> String {
        guard let socketID = fields["socket_id"], socketID.wholeMatch(of: /\d+\.\d+/) != nil else {
            throw HTTPError(400, code: "bad_request", message: "socket_id is required (digits.digits)")
        }
        return socketID
    }

    /// `POST /pusher/auth`: `{"auth"}` for private channels, plus `channel_data` for presence and `shared_secret`
    /// for `private-encrypted-` channels.
    func authorize(_ req: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(req)
        let fields = try Self.fields(req)
        let socketID = try Self.socketID(fields)
        guard let channel = fields["channel_name"], PusherConnection.isValidChannelName(channel),
              channel.hasPrefix("private-") || channel.hasPrefix("presence-") else {
            throw HTTPError(400, code: "bad_request", message: "channel_name must be a private- or presence- channel")
        }
        let app = try signingApp(caller, fields: fields, channel: channel)
        if channel.hasPrefix("presence-") {
            let data: String
            switch caller {
            case .token(let t):
                data = "{\"user_id\":\(JSONString.quote(t.userID))" + (t.userInfo.map { ",\"user_info\":\($0)" } ?? "") + "}"
            case .apiKey:
                // pusher-js posts only socket_id and channel_name: without channel_data the key holder is one user.
                let header = req.headers["authorization"] ?? ""
                data = fields["channel_data"] ?? "{\"user_id\":\"dashboard-\(Signing.hex(Signing.digest(.sha256, Array(header.utf8)).prefix(4)))\"}"
            }
            let sig = Signing.hex(Signing.hmac(.sha256, key: app.secret, message: "\(socketID):\(channel):\(data)"))
            return .json(200, "{\"auth\":\(JSONString.quote(app.key + ":" + sig)),\"channel_data\":\(JSONString.quote(data))}")
        }
        let sig = Signing.hex(Signing.hmac(.sha256, key: app.secret, message: "\(socketID):\(channel)"))
        var body = "{\"auth\":\(JSONString.quote(app.key + ":" + sig))"
        if channel.hasPrefix("private-encrypted-") {
            guard let secret = app.sharedSecret(channel: channel) else {
                throw HTTPError(400, code: "no_encryption_key", message: "app \(app.appID) has no encryption master key for private-encrypted- channels")
            }
            body += ",\"shared_secret\":\(JSONString.quote(Base64.encode(secret)))"
        }
        return .json(200, body + "}")
    }

    /// `POST /pusher/user-auth` (pusher-js's user authentication endpoint): `{"auth","user_data"}` for
    /// `pusher:signin`. A token's user is fixed; an API-key holder names it (`user_data` JSON with an `id`, or `user_id`).
    func authorizeUser(_ req: HTTPRequest) throws -> HTTPResponse {
        let caller = try caller(req)
        let fields = try Self.fields(req)
        let socketID = try Self.socketID(fields)
        let app = try signingApp(caller, fields: fields, channel: nil)
        let userData: String
        switch caller {
        case .token(let t):
            userData = "{\"id\":\(JSONString.quote(t.userID))" + (t.userInfo.map { ",\"user_info\":\($0)" } ?? "") + "}"
        case .apiKey:
            if let given = fields["user_data"] {
                guard let id = (try? JSONSerialization.jsonObject(with: Data(given.utf8)) as? [String: Any])?["id"] as? String, !id.isEmpty else {
                    throw HTTPError(400, code: "bad_request", message: "user_data must be a JSON object with a string id")
                }
                userData = given
            } else if let id = fields["user_id"], !id.isEmpty {
                userData = "{\"id\":\(JSONString.quote(id))}"
            } else {
                throw HTTPError(400, code: "bad_request", message: "user_data (JSON with an id) or user_id is required")
            }
        }
        let sig = Signing.hex(Signing.hmac(.sha256, key: app.secret, message: "\(socketID)::user::\(userData)"))
        return .json(200, "{\"auth\":\(JSONString.quote(app.key + ":" + sig)),\"user_data\":\(JSONString.quote(userData))}")
    }

    /// `POST /api/v1/auth-tokens` (API key): a token a dashboard page can hold instead of an API key.
    /// Body: `tenant` (default tenant when omitted), `user_id`, optional `user_info` (object, at most 1 KB),
    /// `ttl_seconds` (60 to 86,400; default 3,600).
    func issueToken(_ req: HTTPRequest) throws -> HTTPResponse {
        try requireAPIKey(req)
        let o = try Self.json(req)
        let tenant = o["tenant"] as? String ?? defaultTenant
        guard apps.contains(where: { $0.tenant == tenant }) else {
            throw HTTPError(404, code: "no_app", message: "tenant \(tenant) has no Pusher app")
        }
        guard let user = o["user_id"] as? String, !user.isEmpty, user.utf8.count <= 128 else {
            throw HTTPError(422, code: "invalid", message: "user_id is required (a string of at most 128 characters)")
        }
        var info: String?
        if let i = o["user_info"] {
            guard i is [String: Any], let d = try? JSONSerialization.data(withJSONObject: i, options: [.sortedKeys]), d.count <= 1024 else {
                throw HTTPError(422, code: "invalid", message: "user_info must be a JSON object of at most 1 KB")
            }
            info = String(decoding: d, as: UTF8.self)
        }
        let ttl = (o["ttl_seconds"] as? NSNumber)?.intValue ?? 3600
        guard (60...DashboardToken.maxTTL).contains(ttl) else {
            throw HTTPError(422, code: "invalid", message: "ttl_seconds must be from 60 to \(DashboardToken.maxTTL)")
        }
        guard let key = DashboardToken.signingKey(apiKeys: apiKeys) else { throw HTTPError(503, code: "no_api_keys", message: "no API keys are configured") }
        let expires = Int64(now()) + Int64(ttl)
        let token = DashboardToken(tenant: tenant, userID: user, userInfo: info, expires: expires).encoded(key: key)
        return .json(201, "{\"token\":\(JSONString.quote(token)),\"tenant\":\(JSONString.quote(tenant)),\"user_id\":\(JSONString.quote(user)),\"expires_at\":\(expires)}")
    }
}
