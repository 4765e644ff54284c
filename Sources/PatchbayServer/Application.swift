// The running gateway: builds the router from the configuration, starts the listener, answers the operational
// endpoints, and shuts down gracefully (STYLE.md §10: stop accepting, close WebSockets with 1001, finish
// in-flight HTTP, then stop the loops).
import EventPlane
import Events
import Foundation
import HTTPClient
import Logging
import MediaBridge
import Store
import Synchronization
import Transport
import WireFormats

/// Patchbay's composition root: a validated configuration in, a serving gateway out.
public final class Application: Sendable {
    /// The resolved configuration.
    public let config: PatchbayConfig
    /// Metrics `/metrics` renders.
    public let metrics: PatchbayMetrics
    /// The HTTP + WebSocket server.
    public let server: Server
    /// Where every plane publishes its events (the event plane subscribes; tests record).
    public let events: EventBus
    /// Outbound HTTP (provider REST APIs).
    public let httpClient: HTTPClient
    /// The media plane.
    public let mediaBridge: MediaBridge
    /// The event plane (Pusher protocol, HTTP API); subscribed to `events`.
    public let eventPlane: EventPlane
    let logger: Logger
    let routes: Router
    let lifecycle = Lifecycle()

    /// The application's phase, shared with the readiness route.
    final class Lifecycle: Sendable {
        enum Phase: Int { case created, serving, draining, stopped }
        let value = Atomic<Int>(Phase.created.rawValue)
        var isServing: Bool { value.load(ordering: .relaxed) == Phase.serving.rawValue }
        func set(_ p: Phase) { value.store(p.rawValue, ordering: .releasing) }
        func transition(from a: Phase, to b: Phase) -> Bool {
            value.compareExchange(expected: a.rawValue, desired: b.rawValue, ordering: .acquiringAndReleasing).exchanged
        }
    }

    /// Builds the gateway and its routes; nothing listens until `start()`.
    /// `extraRoutes` lets the executable (and tests) add routes before the router freezes.
    public init(config: PatchbayConfig, logger: Logger, metrics: PatchbayMetrics = PatchbayMetrics(),
                extraRoutes: (Router) -> Void = { _ in }) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
        let router = Router()
        self.routes = router
        var settings = ServerConfiguration()
        settings.host = config.server.host
        settings.port = config.server.port
        settings.loops = config.server.loops
        settings.maxBodyBytes = config.server.maxBodyBytes
        settings.maxWebSocketMessageBytes = config.server.maxWebSocketMessageBytes
        settings.tlsCertificatePath = config.server.tlsCertificatePath
        settings.tlsKeyPath = config.server.tlsKeyPath
        self.server = Server(configuration: settings, router: router, logger: logger)
        events = EventBus()
        httpClient = HTTPClient(logger: logger)
        mediaBridge = MediaBridge(settings: Self.bridgeSettings(config), tenants: config.tenants.map(Self.bridgeTenant),
                                  http: httpClient, events: events, logger: logger)
        mediaBridge.install(on: router)
        eventPlane = EventPlane(apps: config.tenants.compactMap { t in
            t.pusher.map { PusherAppConfig(tenant: t.id, appID: $0.appID, key: $0.key, secret: $0.secret,
                                           encryptionMasterKey: $0.encryptionMasterKey, maxConnections: $0.maxConnections, webhookURL: $0.webhookURL) }
        }, apiKeys: config.apiKeys, logger: logger, defaultTenant: config.defaultTenant.id, tenants: config.tenants.map(\.id), http: httpClient)
        eventPlane.install(on: router)
        events.subscribe(eventPlane)
        OperationalRoutes.add(to: router, config: config, metrics: metrics, server: server, bridge: mediaBridge, eventPlane: eventPlane,
                              isReady: { [lifecycle] in lifecycle.isServing })
        router.observeResponses { route, method, status in metrics.countRequest(route: route, method: method, status: status) }
        if config.server.diagnosticEcho {
            router.webSocket("/diagnostics/echo") { _, _ in DiagnosticEcho() }
        }
        extraRoutes(router)
    }

    static func bridgeSettings(_ c: PatchbayConfig) -> BridgeSettings {
        var b = BridgeSettings()
        b.maxLeadMillis = c.media.maxLeadMillis
        b.markIntervalMillis = c.media.markIntervalMillis
        b.agentStartTimeoutMillis = c.media.agentStartTimeoutMillis
        b.preAgentBufferMillis = c.media.preAgentBufferMillis
        if let prompt = c.media.fallbackPrompt { b.fallbackPrompt = prompt }
        b.twilioAPIURL = c.providers.twilio
        b.elevenLabsAPIURL = c.providers.elevenLabs
        b.publicURL = c.publicURL
        return b
    }

    static func bridgeTenant(_ t: Tenant) -> BridgeTenant {
        BridgeTenant(id: t.id, numbers: t.numbers, twilioAccountSID: t.twilio.accountSID, twilioAuthToken: t.twilio.authToken,
                     elevenLabsAPIKey: t.elevenLabs.apiKey, defaultAgentID: t.elevenLabs.defaultAgentID,
                     agentsByNumber: t.elevenLabs.agentsByNumber)
    }

    /// The bound port (after `start()`).
    public var port: Int { server.port }

    /// The store (SQLite, WAL) under the data directory, open while serving.
    public private(set) var database: Database? {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
    private let storage = Mutex<Database?>(nil)

    /// Creates the data directory, opens the store (migrations applied) and starts serving. Throws when the port,
    /// the data directory or the store is unusable.
    public func start() throws {
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        let db = try Database(path: (config.dataDirectory as NSString).appendingPathComponent("patchbay.sqlite"),
                              migrations: EventLogSchema.migrations + WebhookSchema.migrations)
        database = db
        eventPlane.attach(try EventLog(database: db, retentionHours: config.eventRetentionHours))
        let outbox = try WebhookOutbox(database: db, http: httpClient, logger: logger, schedule: config.webhookRetrySeconds)
        eventPlane.attach(outbox)
        Task.detached { await outbox.run() } // ends when the store closes
        try server.start()
        lifecycle.set(.serving)
        logger.info("patchbay serving", metadata: ["version": "\(PatchbayVersion.current)", "port": "\(server.port)",
                                                  "loops": "\(server.loops.count)", "tenants": "\(config.tenants.count)"])
    }

    /// Graceful shutdown: readiness fails at once, then the server drains (see `Server.shutdown`).
    public func shutdown() async {
        guard lifecycle.transition(from: .serving, to: .draining) else { return }
        await server.shutdown(timeout: .milliseconds(Int64(config.server.shutdownTimeoutSeconds * 1000)))
        // Deliveries in flight finish and are recorded before the HTTP client and the store close (STYLE.md §10).
        await eventPlane.outbox?.drain(timeout: .milliseconds(Int64(min(config.server.shutdownTimeoutSeconds, 15) * 1000)))
        eventPlane.shutdown()
        httpClient.shutdown()
        database?.close()
        lifecycle.set(.stopped)
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully and returns.
    public func runUntilSignalled() async {
        let sig = await waitForTerminationSignal()
        logger.notice("shutdown requested", metadata: ["signal": "\(sig == SIGTERM ? "SIGTERM" : "SIGINT")"])
        await shutdown()
    }
}

/// Waits for SIGTERM or SIGINT (both stop killing the process while this waits) and returns which one came.
public func waitForTerminationSignal() async -> Int32 {
    let (stream, continuation) = AsyncStream<Int32>.makeStream()
    let sources = [SIGTERM, SIGINT].map { sig -> any DispatchSourceSignal in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { continuation.yield(sig) }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    for await sig in stream { return sig }
    return SIGTERM
}

/// `/healthz`, `/readyz`, `/metrics`.
enum OperationalRoutes {
    static func add(to router: Router, config: PatchbayConfig, metrics: PatchbayMetrics, server: Server, bridge: MediaBridge, eventPlane: EventPlane,
                    isReady: @escaping @Sendable () -> Bool) {
        let started = Date()
        router.on(.GET, "/healthz") { _ in
            .json(200, "{\"status\":\"ok\",\"version\":\(JSONString.quote(PatchbayVersion.current)),\"uptime_seconds\":\(Int(Date().timeIntervalSince(started)))}")
        }
        let dataDirectory = config.dataDirectory
        router.on(.GET, "/readyz") { _ in
            guard isReady() else {
                throw HTTPError(503, code: "not_ready", message: server.isDraining ? "shutting down" : "starting",
                                headers: ["retry-after": "1"])
            }
            guard access(dataDirectory, W_OK) == 0 else {
                throw HTTPError(503, code: "not_ready", message: "data directory \(dataDirectory) is not writable")
            }
            return .json(200, "{\"status\":\"ready\",\"checks\":{\"loops\":\"ok\",\"data_dir\":\"ok\"}}")
        }
        router.on(.GET, "/metrics") { _ in
            var extra: [(name: String, help: String, value: Double)] = [
                ("patchbay_transport_connections", "Open TCP connections (HTTP and WebSocket).", Double(server.openConnections.load(ordering: .relaxed))),
                ("patchbay_transport_websockets", "Open WebSocket connections, server and client.", Double(server.openWebSockets.load(ordering: .relaxed))),
                ("patchbay_http_in_flight_requests", "HTTP requests received and not yet answered.", Double(server.inFlightRequests.load(ordering: .relaxed))),
                ("patchbay_transport_event_loops", "Event-loop threads serving the listener.", Double(server.loops.count)),
            ]
            for c in 2...5 {
                extra.append(("patchbay_http_responses_\(c)xx_total", "HTTP responses with a \(c)xx status, routed or not.", Double(server.answeredRequests(statusClass: c))))
            }
            let c = bridge.counters
            extra.append(("patchbay_media_active_calls", "Calls being bridged now.", Double(c.activeCalls.load(ordering: .relaxed))))
            extra += [
                ("patchbay_media_calls_started_total", "Calls that reached start and opened an agent leg.", Double(c.callsStarted.load(ordering: .relaxed))),
                ("patchbay_media_calls_completed_total", "Calls that ended normally.", Double(c.callsCompleted.load(ordering: .relaxed))),
                ("patchbay_media_calls_failed_total", "Calls that ended in failure (agent unreachable or failed, protocol errors).",
                 Double(c.callsFailed.load(ordering: .relaxed))),
                ("patchbay_media_streams_refused_total", "Media stream upgrades or starts refused (signature, token, protocol).",
                 Double(c.streamsRefused.load(ordering: .relaxed))),
                ("patchbay_media_interruptions_total", "Barge-ins (agent interruption -> Twilio clear).", Double(c.interruptions.load(ordering: .relaxed))),
                ("patchbay_media_frames_to_agent_total", "Caller frames sent to agents (ended calls).", Double(c.framesToAgent.load(ordering: .relaxed))),
                ("patchbay_media_frames_to_caller_total", "Agent frames sent to callers (ended calls).", Double(c.framesToCaller.load(ordering: .relaxed))),
                ("patchbay_media_playout_underruns_total", "Agent frames that reached Twilio after its queue ran dry mid-response.",
                 Double(c.underruns.load(ordering: .relaxed))),
            ]
            let e = eventPlane
            extra += [
                ("patchbay_events_connections", "Open Pusher-protocol connections.", Double(e.connectionsOpen.load(ordering: .relaxed))),
                ("patchbay_events_subscriptions", "Channel subscriptions held by Pusher-protocol connections.", Double(e.subscriptions.load(ordering: .relaxed))),
                ("patchbay_events_messages_in_total", "Messages received on Pusher-protocol connections.", Double(e.messagesIn.load(ordering: .relaxed))),
                ("patchbay_events_messages_out_total", "Messages delivered to Pusher-protocol subscribers.", Double(e.messagesOut.load(ordering: .relaxed))),
                ("patchbay_events_slow_subscribers_dropped_total", "Subscribers disconnected (4100) because their queue overflowed.",
                 Double(e.slowSubscribersDropped.load(ordering: .relaxed))),
                ("patchbay_events_auth_failures_total", "Refused channel authorizations and HTTP API signatures.", Double(e.authFailures.load(ordering: .relaxed))),
                ("patchbay_events_published_total", "Events published (HTTP API and Patchbay's own).", Double(e.eventsPublished.load(ordering: .relaxed))),
            ]
            if let w = e.pusherWebhooks {
                extra += [
                    ("patchbay_pusher_webhook_events_delivered_total", "Pusher-format webhook events delivered (2xx).", Double(w.delivered.load(ordering: .relaxed))),
                    ("patchbay_pusher_webhook_attempts_failed_total", "Pusher-format webhook POSTs that failed (retried for 5 minutes).",
                     Double(w.failedAttempts.load(ordering: .relaxed))),
                    ("patchbay_pusher_webhook_events_dropped_total", "Pusher-format webhook events given up after 5 minutes of retries.",
                     Double(w.dropped.load(ordering: .relaxed))),
                ]
            }
            if let o = e.outbox {
                extra += [
                    ("patchbay_webhook_deliveries_delivered_total", "Webhook deliveries answered 2xx.", Double(o.delivered.load(ordering: .relaxed))),
                    ("patchbay_webhook_attempts_failed_total", "Webhook attempts that failed (error, time-out or non-2xx); retried or dead-lettered.",
                     Double(o.failedAttempts.load(ordering: .relaxed))),
                    ("patchbay_webhook_deliveries_dead_total", "Webhook deliveries dead-lettered after their last attempt.", Double(o.deadLettered.load(ordering: .relaxed))),
                ]
            }
            extra.append(("patchbay_websocket_dropped_messages_total", "WebSocket messages dropped because a peer's queue was full.",
                          Double(server.droppedMessages.load(ordering: .relaxed))))
            return HTTPResponse(status: 200, headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"], body: metrics.render(extra: extra))
        }
    }
}

/// `WS /diagnostics/echo`: sends every message back unchanged (PATCHBAY_DIAGNOSTIC_ECHO).
final class DiagnosticEcho: WebSocketHandler {
    func webSocketDidOpen(_ connection: WebSocketConnection) {}
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        switch message.kind {
        case .text: connection.send(textBytes: message.bytes)
        case .binary: connection.send(binary: message.bytes)
        }
    }
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {}
}
