// The event plane's entry point: `WS /app/{key}`, the Pusher HTTP API under `/apps/{app_id}`, `POST /pusher/auth`,
// and the EventSink that publishes Patchbay's own events to their channels.
import Events
import Foundation
import HTTPClient
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

/// The event plane.
public final class EventPlane: EventSink, Sendable {
    public let apps: [PusherAppConfig]
    let apiKeys: [String]
    let hub = ChannelHub()
    let logger: Logger
    /// The wall clock in seconds (a parameter so tests can check the 600 s window).
    let now: @Sendable () -> Double

    public let connectionsOpen = Atomic<Int>(0)
    public let subscriptions = Atomic<Int>(0)
    public let messagesIn = Atomic<Int>(0)
    public let messagesOut = Atomic<Int>(0)
    public let slowSubscribersDropped = Atomic<Int>(0)
    public let authFailures = Atomic<Int>(0)
    public let eventsPublished = Atomic<Int>(0)
    private let log = Mutex<EventLog?>(nil)
    private let webhooks = Mutex<WebhookOutbox?>(nil)

    /// The outgoing-webhook outbox (attached once the store is open).
    public var outbox: WebhookOutbox? { webhooks.withLock { $0 } }

    /// Attaches the outbox: from now on Patchbay's events go to subscribed webhooks too.
    public func attach(_ outbox: WebhookOutbox) { webhooks.withLock { $0 = outbox } }
    static let maxReplay = 1000

    /// The durable log (attached once the store is open).
    public var eventLog: EventLog? { log.withLock { $0 } }

    /// Attaches the durable event log: from now on every published event is numbered and stored; events older than
    /// the retention time are purged every minute (until the store closes).
    public func attach(_ eventLog: EventLog) {
        log.withLock { $0 = eventLog }
        let now = self.now
        Task.detached {
            while true {
                try? await Task.sleep(for: .seconds(60))
                do { try await eventLog.purge(nowMillis: Int64(now() * 1000)) } catch { return }
            }
        }
    }

    /// A channel event as subscribers receive it (`patchbay_seq`: its place in the channel's log; stock clients
    /// ignore the field).
    static func message(event: String, channel: String, data: String, seq: Int64?) -> String {
        var s = "{\"event\":\(JSONString.quote(event)),\"channel\":\(JSONString.quote(channel)),\"data\":\(JSONString.quote(data))"
        if let seq { s += ",\"patchbay_seq\":\(seq)" }
        return s + "}"
    }

    /// Numbers and fans out one event on one channel; returns the log row to store (nil without a log). The HTTP
    /// API stores a request's rows in one transaction before answering (a 2xx means stored).
    func emit(app: PusherAppConfig, channel: String, event: String, data: String, excluding: String?) -> EventLog.Row? {
        let log = eventLog
        let seq = log?.nextSequence(app: app.appID, channel: channel)
        hub.publish(app: app.appID, channel: channel, text: Self.message(event: event, channel: channel, data: data, seq: seq),
                    excluding: excluding, seq: seq, cachedAt: now())
        return seq.map { EventLog.Row(app: app.appID, channel: channel, seq: $0, event: event, data: data, createdMillis: Int64((now() * 1000).rounded())) }
    }

    /// Open connections per app id (for `maxConnections`).
    private let slots = Mutex<[String: Int]>([:])

    /// Takes one of the app's connection slots; false when the app is at its `maxConnections`.
    func takeSlot(_ app: PusherAppConfig) -> Bool {
        slots.withLock { open in
            let n = open[app.appID, default: 0]
            guard app.maxConnections == 0 || n < app.maxConnections else { return false }
            open[app.appID] = n + 1
            return true
        }
    }

    func releaseSlot(_ app: PusherAppConfig) { slots.withLock { $0[app.appID, default: 1] -= 1 } }

    /// The event log's key for a tenant without a Pusher app (apps are logged under their app id).
    static func logKey(tenant: String) -> String { "tenant/" + tenant }

    /// The tenant webhooks belong to when a request names none.
    let defaultTenant: String

    /// Pusher-format server webhooks, when an app has a `webhookURL` and an HTTP client was given.
    public let pusherWebhooks: PusherWebhooks?

    /// Every configured tenant (with or without a Pusher app).
    let tenants: Set<String>

    public init(apps: [PusherAppConfig], apiKeys: [String], logger: Logger, defaultTenant: String = "default", tenants: [String] = [],
                http: HTTPClient? = nil, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.apps = apps
        self.tenants = Set(tenants + apps.map(\.tenant) + [defaultTenant])
        self.defaultTenant = defaultTenant
        self.apiKeys = apiKeys
        self.logger = logger
        self.now = now
        if let http, apps.contains(where: { $0.webhookURL != nil }) {
            let hooks = PusherWebhooks(apps: apps, http: http, logger: logger, now: now)
            pusherWebhooks = hooks
            Task.detached { await hooks.run() }
        } else {
            pusherWebhooks = nil
        }
    }

    /// Stops background work that would outlive the server (the Pusher webhook sender).
    public func shutdown() { pusherWebhooks?.stop() }

    /// Adds the event plane's routes.
    public func install(on router: Router) {
        router.captureHeader("authorization")
        router.webSocket("/app/{key}") { [self] req, loop in
            guard let app = apps.first(where: { $0.key == req.pathParameters["key"] }) else {
                // The protocol's refusals come after the upgrade: error event, then the same close code (§1).
                return RefusingConnection(code: PusherError.appDoesNotExist, message: "Application does not exist")
            }
            // `protocol`: pusher-js sends 7, pysher 6; 5 to 7 are the same on the wire.
            guard let version = req.queryValue("protocol") else {
                return RefusingConnection(code: PusherError.noProtocol, message: "No protocol version supplied (?protocol=7)")
            }
            guard let number = Int(version) else {
                return RefusingConnection(code: PusherError.invalidVersion, message: "Invalid version string format")
            }
            guard (5...7).contains(number) else {
                return RefusingConnection(code: PusherError.unsupportedProtocol, message: "Unsupported protocol version \(number) (5 to 7 are)")
            }
            return PusherConnection(plane: self, app: app, loop: loop)
        }
        router.onAsync(.POST, "/apps/{app_id}/events") { [self] req in try await triggerEvents(req) }
        router.onAsync(.POST, "/apps/{app_id}/batch_events") { [self] req in try await triggerBatch(req) }
        router.onAsync(.GET, "/api/v1/events") { [self] req in try await loggedEvents(req) }
        router.onAsync(.POST, "/api/v1/webhooks") { [self] req in try await createWebhook(req) }
        router.on(.GET, "/api/v1/webhooks") { [self] req in try listWebhooks(req) }
        router.onAsync(.DELETE, "/api/v1/webhooks/{id}") { [self] req in try await deleteWebhook(req) }
        router.onAsync(.GET, "/api/v1/webhooks/{id}/deliveries") { [self] req in try await webhookDeliveries(req) }
        router.on(.GET, "/apps/{app_id}/channels") { [self] req in try channelsInfo(req) }
        router.on(.GET, "/apps/{app_id}/channels/{channel}") { [self] req in try channelInfo(req) }
        router.on(.GET, "/apps/{app_id}/channels/{channel}/users") { [self] req in try channelUsers(req) }
        router.on(.POST, "/apps/{app_id}/users/{user_id}/terminate_connections") { [self] req in try terminate(req) }
        // pusher 3.3.4 (Python) posts terminate_user_connections without the /apps/{app_id} prefix: served too.
        router.on(.POST, "/users/{user_id}/terminate_connections") { [self] req in try terminate(req) }
        router.on(.POST, "/pusher/auth") { [self] req in try authorize(req) }
        router.on(.POST, "/pusher/user-auth") { [self] req in try authorizeUser(req) }
        router.on(.POST, "/api/v1/auth-tokens") { [self] req in try issueToken(req) }
    }

    // MARK: - EventSink: Patchbay's events on their channels (PRODUCT.md "Events")

    public func publish(_ event: PatchbayEvent) {
        let data = event.json
        outbox?.enqueue(eventID: event.id, type: event.type, tenant: event.tenant, payload: data)
        // Every event is logged (PRODUCT.md "Events"); a tenant without a Pusher app has its own log key and no sockets.
        let app = apps.first(where: { $0.tenant == event.tenant })
        let logKey = app?.appID ?? Self.logKey(tenant: event.tenant)
        let log = eventLog
        let nowMillis = Int64((now() * 1000).rounded())
        for channel in event.channels {
            let seq = log?.nextSequence(app: logKey, channel: channel)
            if let log, let seq { log.enqueue(app: logKey, channel: channel, seq: seq, event: event.type, data: data, nowMillis: nowMillis) }
            if let app {
                hub.publish(app: app.appID, channel: channel, text: Self.message(event: event.type, channel: channel, data: data, seq: seq),
                            seq: seq, cachedAt: now())
            }
        }
        eventsPublished.add(1, ordering: .relaxed)
    }
}

/// Answers an unknown app key the protocol's way: `pusher:error` 4001, then close 4001.
final class RefusingConnection: WebSocketHandler {
    let code: UInt16
    let message: String
    init(code: UInt16, message: String) {
        self.code = code
        self.message = message
    }
    func webSocketDidOpen(_ connection: WebSocketConnection) {
        connection.send(text: "{\"event\":\"pusher:error\",\"data\":{\"code\":\(code),\"message\":\(JSONString.quote(message))}}")
        connection.close(WebSocketCloseCode(code), reason: message)
    }
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {}
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {}
}
