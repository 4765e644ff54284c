// Transport: libwebsockets contexts, one service thread each; the HTTP and WebSocket server, WebSocket
// clients, timers and loop mailboxes. The only importer of CWebSockets.
//
// Threading model
// - Debian's libwebsockets 4.1 is built with LWS_MAX_SMP 1: one service thread per lws_context. Patchbay runs
//   `loops` contexts (default: one per core), each on its own dedicated thread (`EventLoop`), all listening on
//   the same port with SO_REUSEPORT (LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE): the kernel balances accepted
//   connections across loops, as nginx workers do.
// - Everything about a connection happens on its loop's thread: HTTP parsing, handlers marked `.onLoop`,
//   WebSocket callbacks, writes, timers. A call's Twilio leg and its ElevenLabs leg live on one loop (the client
//   leg is opened with `EventLoop.connectWebSocket` from the server leg's loop), so the media path takes no lock.
// - Other threads never touch lws or loop state: they post a closure with `EventLoop.execute`, which appends to
//   a mutex-guarded mailbox and wakes the loop with `lws_cancel_service`; the loop drains the mailbox in
//   LWS_CALLBACK_EVENT_WAIT_CANCELLED. `.async` HTTP handlers run on the Swift concurrency pool and hand their
//   response back the same way. Blocking work (SQLite, curl, DNS) never runs on a loop thread.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
internal import CWebSockets

/// Listener settings.
public struct ServerConfiguration: Sendable {
    /// Address to bind.
    public var host: String = "0.0.0.0"
    /// Port; 0 picks a free one (read it back from `Server.port`).
    public var port: Int = 8080
    /// Event-loop threads (one lws context each).
    public var loops: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Largest request body; larger is answered 413 and the connection closed.
    public var maxBodyBytes: Int = 1 << 20
    /// Largest WebSocket message (after reassembly); larger closes the connection with 1009.
    public var maxWebSocketMessageBytes: Int = 64 << 10
    /// Seconds of WebSocket silence before lws sends a ping.
    public var webSocketPingIntervalSeconds: Int = 20
    /// Seconds without any valid traffic (pongs included) before a WebSocket is hung up.
    public var webSocketIdleTimeoutSeconds: Int = 60
    /// Seconds an HTTP connection may sit idle (keep-alive) or take to send its request.
    public var httpIdleTimeoutSeconds: Int = 30
    /// Messages a WebSocket may have queued while its socket is choked; past that sends are dropped and counted.
    public var outboundQueueLimit: Int = 512
    /// PEM certificate chain for https/wss on the listener (with `tlsKeyPath`).
    public var tlsCertificatePath: String?
    /// PEM private key for `tlsCertificatePath`.
    public var tlsKeyPath: String?
    /// Extra CA file trusted by outbound wss connections, besides the system store (tests, private CAs).
    public var clientCAFile: String?

    /// Defaults: port 8080, one loop per core.
    public init() {}
}

/// Why the server could not start.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// What failed, for an operator.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The HTTP + WebSocket server: `loops` event loops sharing one port.
public final class Server: Sendable {
    /// The settings it was built with.
    public let configuration: ServerConfiguration
    /// The routes.
    public let router: Router
    let logger: Logger
    /// The event loops, index 0 first. They exist from `init`; they serve after `start()`.
    public let loops: [EventLoop]
    let boundPort = Atomic<Int>(0)
    let state = Atomic<Int>(0) // 0 created, 1 running, 2 draining, 3 stopped
    /// Open TCP connections (HTTP and WebSocket), across loops.
    public let openConnections = Atomic<Int>(0)
    /// Open WebSockets (server and client), across loops.
    public let openWebSockets = Atomic<Int>(0)
    /// HTTP requests being handled (received, not yet answered).
    public let inFlightRequests = Atomic<Int>(0)
    /// WebSocket messages dropped because a peer's queue was full.
    public let droppedMessages = Atomic<Int>(0)
    let answered = StatusCounters()

    /// Builds the loops; nothing listens until `start()`.
    public init(configuration: ServerConfiguration, router: Router, logger: Logger) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        let count = max(1, configuration.loops)
        var loops: [EventLoop] = []
        for i in 0..<count { loops.append(EventLoop(index: i, configuration: configuration, router: router, logger: logger)) }
        self.loops = loops
        for loop in loops { loop.server = Unmanaged.passUnretained(self) }
    }

    /// The port the listener is bound to (useful after starting on port 0).
    public var port: Int { boundPort.load(ordering: .acquiring) }

    /// Whether the server is draining or stopped.
    public var isDraining: Bool { state.load(ordering: .relaxed) >= 2 }

    /// Binds the port on every loop and starts their threads. Throws if the port is taken or TLS files are bad.
    public func start() throws {
        guard state.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged else {
            throw TransportError("server already started")
        }
        router.freeze()
        LibraryLog.install(logger: logger)
        var port = configuration.port
        Self.contextCreation.lock()
        defer { Self.contextCreation.unlock() }
        do {
            port = try Listener.exclusivePort(host: configuration.host, port: port)
            for loop in loops {
                let bound = try loop.createContext(port: port)
                if port == 0 { port = bound }
            }
        } catch {
            for loop in loops { loop.destroyContextBeforeStart() }
            state.store(3, ordering: .releasing)
            throw error
        }
        boundPort.store(port, ordering: .releasing)
        for loop in loops { loop.startThread() }
        logger.info("listening", metadata: ["host": "\(configuration.host)", "port": "\(port)", "loops": "\(loops.count)",
                                            "tls": "\(configuration.tlsCertificatePath != nil)"])
    }

    /// Serialises lws context creation in the process. libwebsockets 4.1 re-allocates OpenSSL's ex-data index for its
    /// connections every time a context initialises TLS (openssl-tls.c), so a context created while another
    /// context's TLS handshake is under way breaks that handshake's certificate check. Patchbay creates all its
    /// contexts at start-up, before any traffic; tests that run TLS beside other servers hold this lock.
    static let contextCreation = NSRecursiveLock()

    /// Graceful shutdown: stop accepting, close every WebSocket with 1001, let in-flight HTTP requests finish,
    /// then stop the loops and join their threads. After `timeout` whatever remains is dropped.
    public func shutdown(timeout: Duration = .seconds(10)) async {
        guard state.compareExchange(expected: 1, desired: 2, ordering: .acquiringAndReleasing).exchanged else { return }
        logger.info("draining", metadata: ["ws.open": "\(openWebSockets.load(ordering: .relaxed))",
                                           "http.in_flight": "\(inFlightRequests.load(ordering: .relaxed))"])
        for loop in loops { loop.execute { loop.beginDrain() } }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if inFlightRequests.load(ordering: .acquiring) == 0 && openWebSockets.load(ordering: .acquiring) == 0 { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        // Let the close frames and last responses reach the kernel.
        for loop in loops { loop.execute { loop.closeIdleConnections() } }
        try? await Task.sleep(for: .milliseconds(20))
        for loop in loops { loop.stop() }
        for loop in loops { await loop.join() }
        state.store(3, ordering: .releasing)
        logger.info("stopped")
    }

    func countAnswer(status: Int) { answered.count(status) }

    /// libwebsockets' version string (for `patchbay version`).
    public static var libraryVersion: String { String(cString: lws_get_library_version()) }

    /// The OpenSSL that libwebsockets (and libcurl) run on.
    public static var tlsLibraryVersion: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }

    /// Requests answered with a status of class `n`xx (2...5), routed or not (404, 405, 413, 400 included).
    public func answeredRequests(statusClass n: Int) -> Int { answered.value(n) }
}

/// Answered-request counters by status class.
final class StatusCounters: Sendable {
    let c2 = Atomic<Int>(0), c3 = Atomic<Int>(0), c4 = Atomic<Int>(0), c5 = Atomic<Int>(0), other = Atomic<Int>(0)

    func count(_ status: Int) {
        switch status / 100 {
        case 2: c2.add(1, ordering: .relaxed)
        case 3: c3.add(1, ordering: .relaxed)
        case 4: c4.add(1, ordering: .relaxed)
        case 5: c5.add(1, ordering: .relaxed)
        default: other.add(1, ordering: .relaxed)
        }
    }

    func value(_ statusClass: Int) -> Int {
        switch statusClass {
        case 2: return c2.load(ordering: .relaxed)
        case 3: return c3.load(ordering: .relaxed)
        case 4: return c4.load(ordering: .relaxed)
        case 5: return c5.load(ordering: .relaxed)
        default: return other.load(ordering: .relaxed)
        }
    }
}

/// Routes lws's own log lines (warnings and errors only) into swift-log.
enum LibraryLog {
    private static let shared = Mutex<Logger?>(nil)

    static func install(logger: Logger) {
        let first = shared.withLock { current -> Bool in
            defer { current = logger }
            return current == nil
        }
        if first {
            CWebSockets_set_log(Int32(LLL_ERR | LLL_WARN), { level, line in
                guard let line else { return }
                var text = String(cString: line)
                while text.last == "\n" { text.removeLast() }
                LibraryLog.shared.withLock { logger in
                    if level & Int32(LLL_ERR) != 0 {
                        logger?.error("libwebsockets", metadata: ["lws.line": "\(text)"])
                    } else {
                        logger?.warning("libwebsockets", metadata: ["lws.line": "\(text)"])
                    }
                }
            })
        }
    }
}
