// One Pusher protocol connection (`WS /app/{key}`), owned by its event loop (pusher-channels.md §1-§8).
import Foundation
import Signing
import Synchronization
import Transport
import WireFormats

/// A Pusher app: what `/app/{key}` and `/apps/{app_id}` accept.
public struct PusherAppConfig: Sendable {
    public var tenant: String
    public var appID: String
    public var key: String
    public var secret: String
    /// 32 bytes from which each `private-encrypted-` channel's shared secret is derived (§6); nil: such channels can
    /// be subscribed to but `/pusher/auth` cannot hand out their secrets.
    public var encryptionMasterKey: [UInt8]?
    /// Most connections the app may hold at once (0: no limit); past it `pusher:error` 4004 and close 4004.
    public var maxConnections: Int
    /// Where Pusher-format server webhooks go (channel_occupied, member_added …); nil: none.
    public var webhookURL: String?

    public init(tenant: String, appID: String, key: String, secret: String, encryptionMasterKey: [UInt8]? = nil, maxConnections: Int = 0,
                webhookURL: String? = nil) {
        self.webhookURL = webhookURL
        self.tenant = tenant
        self.appID = appID
        self.key = key
        self.secret = secret
        self.encryptionMasterKey = encryptionMasterKey
        self.maxConnections = maxConnections
    }

    /// `private-encrypted-` channels' shared secret: SHA-256 of the channel name then the master key.
    func sharedSecret(channel: String) -> [UInt8]? {
        encryptionMasterKey.map { Signing.digest(.sha256, Array(channel.utf8) + $0) }
    }
}

/// Pusher's error codes (§4).
enum PusherError {
    static let appDoesNotExist: UInt16 = 4001
    static let overQuota: UInt16 = 4004
    static let invalidVersion: UInt16 = 4006
    static let unsupportedProtocol: UInt16 = 4007
    static let noProtocol: UInt16 = 4008
    static let unauthorized: UInt16 = 4009
    static let overCapacity: UInt16 = 4100
    static let reconnect: UInt16 = 4200
    static let clientEventRejected: UInt16 = 4301
    /// 4300-4399: other errors that do not close the connection.
    static let invalidMessage: UInt16 = 4300
}

final class PusherConnection: WebSocketHandler {
    let plane: EventPlane
    let app: PusherAppConfig
    let loop: EventLoop
    let socketID: String
    var connection: WebSocketConnection?
    /// Channel -> presence user id (nil for other channels).
    var channels: [String: String?] = [:]
    // Client-event rate limit: 10 per second (token bucket).
    var tokens = 10.0
    var lastRefill = Date()
    var closed = false
    /// Holds one of the app's connection slots (released on close).
    var holdsSlot = false
    /// The user signed in with `pusher:signin` (§6 user authentication).
    var signedInUser: String?
    /// Channels being replayed: live events held until the replay has gone out.
    var replaying: [String: Replay] = [:]

    /// A replay under way on one channel. Until the log answers, live events wait in `held`; then everything goes
    /// out through `pending` (logged events, `replay_done`, the held and newer live events) no faster than the socket
    /// drains, so a 1,000-event replay never overflows the connection's bounded queue.
    struct Replay {
        var held: [(Int64, String)] = []
        var pending: [String] = []
        var next = 0
        /// The last sequence number the replay covers (nil until the log has answered).
        var lastSeq: Int64?
        var backlog: Int { held.count + pending.count - next }
    }
    /// Messages a replay keeps queued at most before waiting for the socket to drain.
    static let replayQueueHighWater = 128
    /// Live events a replaying subscriber may have waiting; past it the subscriber is cut off like any slow one.
    static let maxReplayBacklog = 5000

    static let activityTimeoutSeconds = 120
    /// Kernel send buffer per subscriber: 32 KiB (64 KiB as Linux counts it) holds hundreds of events, enough for
    /// bursts and long round trips; past it the per-connection queue takes over, and past that the subscriber is cut.
    static let socketSendBufferBytes = 32 << 10
    static let maxClientEventBytes = 10_240
    /// Largest message a client may send (a client event's 10 KB of data and its envelope); past it `pusher:error`
    /// 4300 and close 1009.
    static let maxMessageBytes = 16_384

    init(plane: EventPlane, app: PusherAppConfig, loop: EventLoop) {
        self.plane = plane
        self.app = app
        self.loop = loop
        var g = SystemRandomNumberGenerator()
        socketID = "\(UInt32.random(in: 1...999_999_999, using: &g)).\(UInt32.random(in: 1...999_999_999, using: &g))"
    }

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        self.connection = connection
        guard plane.takeSlot(app) else {
            closeWithError(PusherError.overQuota, "Over connection quota")
            return
        }
        holdsSlot = true
        plane.connectionsOpen.add(1, ordering: .relaxed)
        // A subscriber's backlog lives in its bounded queue, not in megabytes of kernel buffer (see limitSendBuffer).
        connection.limitSendBuffer(bytes: Self.socketSendBufferBytes)
        connection.maxMessageBytes = Self.maxMessageBytes
        // `data` is a JSON-encoded string (§1: pysher crashes on an object).
        let data = "{\"socket_id\":\"\(socketID)\",\"activity_timeout\":\(Self.activityTimeoutSeconds)}"
        connection.send(text: "{\"event\":\"pusher:connection_established\",\"data\":\(JSONString.quote(data))}")
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        plane.messagesIn.add(1, ordering: .relaxed)
        guard message.kind == .text,
              let object = try? JSONSerialization.jsonObject(with: Data(message.bytes)) as? [String: Any],
              let event = object["event"] as? String else {
            sendError(PusherError.invalidMessage, "Messages must be JSON text frames with an event")
            return
        }
        // `data` arrives as an object (pusher-js) or a string (pysher's ping; some clients double-encode).
        var data = object["data"] as? [String: Any]
        if data == nil, let s = object["data"] as? String, let d = try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any] { data = d }
        switch event {
        case "pusher:ping":
            connection.send(text: "{\"event\":\"pusher:pong\",\"data\":{}}")
        case "pusher:pong":
            break
        case "pusher:subscribe":
            subscribe(data ?? [:])
        case "pusher:unsubscribe":
            if let channel = data?["channel"] as? String { unsubscribe(channel) }
        case "pusher:signin":
            signIn(data ?? [:])
        default:
            if event.hasPrefix("client-") { clientEvent(event, object) }
        }
    }

    func webSocketMessageTooLarge(_ connection: WebSocketConnection) {
        sendError(PusherError.invalidMessage, "Message too large (more than \(Self.maxMessageBytes) bytes)")
    }

    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        closed = true
        guard holdsSlot else { self.connection = nil; return }
        holdsSlot = false
        plane.releaseSlot(app)
        plane.connectionsOpen.subtract(1, ordering: .relaxed)
        for channel in channels.keys { unsubscribe(channel) }
        if let user = signedInUser { plane.hub.unsubscribe(app: app.appID, channel: Self.userChannel(user), socketID: socketID) }
        self.connection = nil
    }

    /// A message from the hub, on this loop. A subscriber that cannot keep up is disconnected with 4100 ("over
    /// capacity", reconnect after back-off) rather than slowing anyone else. While a channel replays, its live
    /// events wait behind the replay.
    func deliver(_ text: String, channel: String? = nil, seq: Int64? = nil) {
        guard let connection, !closed else { return }
        if !replaying.isEmpty, let channel, let seq, let lastSeq = replaying[channel].map({ $0.lastSeq }) {
            // Mutated in place: a copy of the Replay would copy its arrays on every append.
            if let last = lastSeq {
                if seq > last { replaying[channel]!.pending.append(text) }
            } else {
                replaying[channel]!.held.append((seq, text))
            }
            if replaying[channel]!.backlog > Self.maxReplayBacklog {
                plane.slowSubscribersDropped.add(1, ordering: .relaxed)
                closeWithError(PusherError.overCapacity, "Subscriber too slow: reconnect later")
            }
            return
        }
        if connection.send(text: text) == .dropped {
            plane.slowSubscribersDropped.add(1, ordering: .relaxed)
            closeWithError(PusherError.overCapacity, "Subscriber too slow: reconnect later")
        } else {
            plane.messagesOut.add(1, ordering: .relaxed)
        }
    }

    func sendError(_ code: UInt16, _ message: String, channel: String? = nil) {
        var s = "{\"event\":\"pusher:error\","
        if let channel { s += "\"channel\":\(JSONString.quote(channel)),"}
        s += "\"data\":{\"code\":\(code),\"message\":\(JSONString.quote(message))}}"
        connection?.send(text: s)
    }

    /// `pusher:error` then a close with the same code (§4: pysher acts only on the error event).
    func closeWithError(_ code: UInt16, _ message: String) {
        guard !closed else { return }
        sendError(code, message)
        closed = true
        connection?.close(WebSocketCloseCode(code), reason: message)
    }

    // MARK: - Subscriptions (§5-§7)

    static func isValidChannelName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 164 && name.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || "_-=@,.;".utf8.contains(c)
        }
    }

    func subscriptionError(_ channel: String, _ message: String, status: Int, type: String = "AuthError") {
        connection?.send(text: "{\"event\":\"pusher:subscription_error\",\"channel\":\(JSONString.quote(channel)),\"data\":{\"type\":\(JSONString.quote(type)),\"error\":\(JSONString.quote(message)),\"status\":\(status)}}")
    }

    func subscribe(_ data: [String: Any]) {
        guard let channel = data["channel"] as? String, Self.isValidChannelName(channel) else {
            sendError(4009, "Invalid channel name")
            return
        }
        let auth = data["auth"] as? String ?? ""
        let channelData = data["channel_data"] as? String
        let isPresence = channel.hasPrefix("presence-"), isPrivate = channel.hasPrefix("private-")
        var userID: String?
        var userInfo: String?
        if isPrivate || isPresence {
            let signed = "\(socketID):\(channel)" + (isPresence ? ":\(channelData ?? "")" : "")
            let expected = app.key + ":" + Signing.hex(Signing.hmac(.sha256, key: app.secret, message: signed))
            guard Signing.constantTimeEqual(auth, expected) else {
                plane.authFailures.add(1, ordering: .relaxed)
                subscriptionError(channel, "The connection is unauthorized.", status: 401)
                return
            }
        }
        if isPresence {
            guard let channelData, let member = try? JSONSerialization.jsonObject(with: Data(channelData.utf8)) as? [String: Any],
                  let id = member["user_id"].map({ "\($0)" }), !id.isEmpty, id.count <= 128 else {
                subscriptionError(channel, "presence channel_data needs a user_id", status: 400)
                return
            }
            userID = id
            if let info = member["user_info"], let json = try? JSONSerialization.data(withJSONObject: info, options: [.fragmentsAllowed]) {
                guard json.count <= 1024 else { subscriptionError(channel, "user_info over 1 KB", status: 413); return }
                userInfo = String(decoding: json, as: UTF8.self)
            }
        }
        let subscriber = Subscriber(socketID: socketID, loop: loop, connection: LoopBound(self), userID: userID)
        guard let joined = plane.hub.subscribe(app: app.appID, channel: channel, subscriber, memberInfo: userInfo, now: plane.now()) else {
            subscriptionError(channel, "The presence channel has \(ChannelHub.maxPresenceMembers) members already", status: 4100, type: "LimitReached")
            return
        }
        if channels[channel] == nil { plane.subscriptions.add(1, ordering: .relaxed) }
        channels[channel] = userID
        let members = joined.members
        if joined.occupied { plane.pusherWebhooks?.channelOccupied(app: app.appID, channel: channel) }
        if joined.newMember, let userID { plane.pusherWebhooks?.memberAdded(app: app.appID, channel: channel, user: userID) }
        if isPresence {
            let ids = members.map { JSONString.quote($0.0) }.joined(separator: ",")
            let hash = members.map { "\(JSONString.quote($0.0)):\($0.1)" }.joined(separator: ",")
            let presence = "{\"presence\":{\"ids\":[\(ids)],\"hash\":{\(hash)},\"count\":\(members.count)}}"
            connection?.send(text: "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":\(JSONString.quote(channel)),\"data\":\(JSONString.quote(presence))}")
            if joined.newMember, let userID {
                let added = "{\"user_id\":\(JSONString.quote(userID)),\"user_info\":\(userInfo ?? "null")}"
                plane.hub.publish(app: app.appID, channel: channel,
                                  text: "{\"event\":\"pusher_internal:member_added\",\"channel\":\(JSONString.quote(channel)),\"data\":\(JSONString.quote(added))}",
                                  excluding: socketID)
            }
        } else {
            connection?.send(text: "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":\(JSONString.quote(channel)),\"data\":\"{}\"}")
        }
        // Cache channels (§5): the last event published on the channel, or word that there is none.
        if ChannelHub.isCacheChannel(channel) {
            if joined.cached == nil { plane.pusherWebhooks?.cacheMiss(app: app.appID, channel: channel) }
            connection?.send(text: joined.cached ?? "{\"event\":\"pusher:cache_miss\",\"channel\":\(JSONString.quote(channel)),\"data\":\"{}\"}")
        }
        // Patchbay's extension: `patchbay_after` asks for the events missed since that sequence number.
        if let after = (data["patchbay_after"] as? NSNumber)?.int64Value ?? (data["patchbay_after"] as? String).flatMap({ Int64($0) }) {
            replay(channel, after: after)
        }
    }

    /// Sends the logged events after `after`, then the live ones that arrived meanwhile, in sequence order; says
    /// `patchbay:replay_gap` when the log no longer holds the start of what was asked.
    func replay(_ channel: String, after: Int64) {
        guard let log = plane.eventLog else {
            sendError(PusherError.invalidMessage, "This server keeps no event log", channel: channel)
            return
        }
        replaying[channel] = Replay()
        let app = self.app.appID, loop = self.loop, me = LoopBound(self)
        Task {
            let result = try? await log.events(app: app, channel: channel, after: after, limit: EventPlane.maxReplay)
            loop.execute { me.value.finishReplay(channel, after: after, result: result) }
        }
    }

    func finishReplay(_ channel: String, after: Int64, result: (events: [LoggedEvent], oldest: Int64?)?) {
        guard var r = replaying[channel], !closed else { return }
        var last = after
        if let result {
            if let oldest = result.oldest, oldest > after + 1 {
                let gap = "{\"requested_after\":\(after),\"oldest_available\":\(oldest)}"
                r.pending.append("{\"event\":\"patchbay:replay_gap\",\"channel\":\(JSONString.quote(channel)),\"data\":\(JSONString.quote(gap))}")
            }
            for e in result.events {
                r.pending.append(EventPlane.message(event: e.event, channel: channel, data: e.data, seq: e.seq))
                last = e.seq
            }
            let more = result.events.count == EventPlane.maxReplay
            r.pending.append("{\"event\":\"patchbay:replay_done\",\"channel\":\(JSONString.quote(channel)),\"data\":\(JSONString.quote("{\"last_seq\":\(last),\"more\":\(more)}"))}")
        } else {
            r.pending.append("{\"event\":\"pusher:error\",\"channel\":\(JSONString.quote(channel)),\"data\":{\"code\":4302,\"message\":\"Replay failed: the event log could not be read\"}}")
        }
        r.pending += r.held.filter { $0.0 > last }.map(\.1)
        r.held = []
        r.lastSeq = last
        replaying[channel] = r
        pumpReplay(channel)
    }

    /// Sends what a replay has pending while the connection's queue is short; goes on when the queue has drained.
    func pumpReplay(_ channel: String) {
        guard var r = replaying[channel], let connection, !closed else { return }
        let highWater = min(Self.replayQueueHighWater, connection.queueLimit / 2)
        while r.next < r.pending.count && connection.queuedMessages < highWater {
            if connection.send(text: r.pending[r.next]) == .dropped {
                plane.slowSubscribersDropped.add(1, ordering: .relaxed)
                closeWithError(PusherError.overCapacity, "Subscriber too slow: reconnect later")
                return
            }
            plane.messagesOut.add(1, ordering: .relaxed)
            r.next += 1
        }
        if r.next == r.pending.count {
            replaying[channel] = nil
            return
        }
        replaying[channel] = r // the queue holds `highWater` messages: webSocketQueueDrained comes back here
    }

    func webSocketQueueDrained(_ connection: WebSocketConnection) {
        for (channel, r) in replaying where r.lastSeq != nil { pumpReplay(channel) }
    }

    func unsubscribe(_ channel: String) {
        guard channels.removeValue(forKey: channel) != nil else { return }
        replaying[channel] = nil
        plane.subscriptions.subtract(1, ordering: .relaxed)
        let (gone, vacated) = plane.hub.unsubscribe(app: app.appID, channel: channel, socketID: socketID)
        if let gone {
            plane.pusherWebhooks?.memberRemoved(app: app.appID, channel: channel, user: gone)
            let removed = "{\"user_id\":\(JSONString.quote(gone))}"
            plane.hub.publish(app: app.appID, channel: channel,
                              text: "{\"event\":\"pusher_internal:member_removed\",\"channel\":\(JSONString.quote(channel)),\"data\":\(JSONString.quote(removed))}")
        }
        if vacated { plane.pusherWebhooks?.channelVacated(app: app.appID, channel: channel) }
    }

    // MARK: - User authentication (§6)

    /// The channel a signed-in user's socket joins so that `#server-to-user-{id}` events and terminate_connections
    /// reach it (clients cannot subscribe to `#` channels themselves).
    static func userChannel(_ user: String) -> String { "#server-to-user-" + user }

    /// `pusher:signin`: `auth` is the app key and HMAC-SHA256 of `socket_id::user::user_data`; `user_data` must be a
    /// JSON object with a string `id`. Failure: `pusher:error` 4009 and close 4009, as Pusher does.
    func signIn(_ data: [String: Any]) {
        guard let userData = data["user_data"] as? String, let auth = data["auth"] as? String else {
            closeWithError(PusherError.unauthorized, "pusher:signin needs auth and user_data")
            return
        }
        let expected = app.key + ":" + Signing.hex(Signing.hmac(.sha256, key: app.secret, message: "\(socketID)::user::\(userData)"))
        guard Signing.constantTimeEqual(auth, expected) else {
            plane.authFailures.add(1, ordering: .relaxed)
            closeWithError(PusherError.unauthorized, "Invalid signature for pusher:signin")
            return
        }
        guard let user = (try? JSONSerialization.jsonObject(with: Data(userData.utf8)) as? [String: Any])?["id"] as? String,
              !user.isEmpty, user.utf8.count <= 128, signedInUser == nil || signedInUser == user else {
            closeWithError(PusherError.unauthorized, "user_data must be a JSON object with a string id (at most 128 characters)")
            return
        }
        if signedInUser == nil {
            signedInUser = user
            _ = plane.hub.subscribe(app: app.appID, channel: Self.userChannel(user),
                                    Subscriber(socketID: socketID, loop: loop, connection: LoopBound(self), userID: user), memberInfo: nil)
        }
        connection?.send(text: "{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":\(JSONString.quote(userData))}}")
    }

    // MARK: - Client events (§8)

    func clientEvent(_ event: String, _ object: [String: Any]) {
        guard let channel = object["channel"] as? String, channels[channel] != nil else {
            sendError(PusherError.clientEventRejected, "Client events need a channel this connection subscribed to")
            return
        }
        guard channel.hasPrefix("private-") || channel.hasPrefix("presence-"), !channel.hasPrefix("private-encrypted-") else {
            sendError(PusherError.clientEventRejected, "Client events are only allowed on private and presence channels", channel: channel)
            return
        }
        let now = Date()
        tokens = min(10, tokens + now.timeIntervalSince(lastRefill) * 10)
        lastRefill = now
        guard tokens >= 1 else {
            sendError(PusherError.clientEventRejected, "Client event rate limit exceeded (10 per second)", channel: channel)
            return
        }
        tokens -= 1
        let dataJSON: String
        if let s = object["data"] as? String { dataJSON = JSONString.quote(s) }
        else if let d = object["data"], let json = try? JSONSerialization.data(withJSONObject: d, options: [.fragmentsAllowed]) {
            dataJSON = String(decoding: json, as: UTF8.self)
        } else { dataJSON = "{}" }
        guard dataJSON.utf8.count <= Self.maxClientEventBytes, event.utf8.count <= 200 else {
            sendError(PusherError.clientEventRejected, "Client event too large", channel: channel)
            return
        }
        var text = "{\"event\":\(JSONString.quote(event)),\"channel\":\(JSONString.quote(channel)),\"data\":\(dataJSON)"
        if let user = channels[channel] ?? nil, channel.hasPrefix("presence-") { text += ",\"user_id\":\(JSONString.quote(user))" }
        text += "}"
        plane.hub.publish(app: app.appID, channel: channel, text: text, excluding: socketID) // never echoed (§8)
        plane.pusherWebhooks?.clientEvent(app: app.appID, channel: channel, event: event,
                                          data: (object["data"] as? String) ?? dataJSON, socketID: socketID,
                                          user: channel.hasPrefix("presence-") ? (channels[channel] ?? nil) : nil)
    }
}

@available(*, unavailable)
extension PusherConnection: Sendable {}
