// Router: method + path template -> handler, with `{name}` path parameters. Built once before the server
// starts, then read-only and shared by every loop thread (so it needs no lock).
import Synchronization

/// A route's handler: run on the loop thread (must be quick, never block) or off the loop as an async task.
public enum RouteHandler: Sendable {
    /// Runs on the event-loop thread that owns the connection. For cheap answers (health, metrics, TwiML).
    case onLoop(@Sendable (HTTPRequest) throws -> HTTPResponse)
    /// Runs as a task off the loop; the answer is handed back to the owning loop through its mailbox.
    /// For anything that touches the store, the network or a lock.
    case async(@Sendable (HTTPRequest) async throws -> HTTPResponse)
}

/// What the router decided for a request.
public enum RouteMatch: Sendable {
    /// A handler, with the route's template (for metrics labels) and the path parameters.
    case handler(RouteHandler, template: String, parameters: [String: String])
    /// A WebSocket route's acceptor (for a plain HTTP request: the path wants an upgrade, 426).
    case webSocket(WebSocketAcceptor, template: String, parameters: [String: String])
    /// The path exists, not with this method: 405 with `Allow`.
    case methodNotAllowed(allowed: [HTTPMethod])
    /// No route: 404.
    case notFound
}

/// Decides, on the loop thread before the upgrade, whether to accept a WebSocket and with which handler.
/// Throw `HTTPError` to refuse with that status (the upgrade never happens).
public typealias WebSocketAcceptor = @Sendable (HTTPRequest, EventLoop) throws -> any WebSocketHandler

/// Maps method and path to handlers. Configure it before `Server.start()`; it is frozen then.
public final class Router: Sendable {
    struct Route: Sendable {
        var method: HTTPMethod?  // nil: WebSocket
        var template: String
        var segments: [Segment]
        var handler: RouteHandler?
        var acceptor: WebSocketAcceptor?
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private let state = Mutex<(routes: [Route], headers: Set<String>, frozen: Bool)>(([], [], false))

    /// An empty router.
    public init() {}

    /// Routes `method pattern` to a handler that runs on the loop thread. Patterns look like `/apps/{app_id}/events`.
    public func on(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        add(Route(method: method, template: pattern, segments: Self.parse(pattern), handler: .onLoop(handler), acceptor: nil))
    }

    /// Routes `method pattern` to an async handler run off the loop.
    public func onAsync(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping @Sendable (HTTPRequest) async throws -> HTTPResponse) {
        add(Route(method: method, template: pattern, segments: Self.parse(pattern), handler: .async(handler), acceptor: nil))
    }

    /// Routes WebSocket upgrades on `pattern` to `accept`.
    public func webSocket(_ pattern: String, _ accept: @escaping WebSocketAcceptor) {
        add(Route(method: nil, template: pattern, segments: Self.parse(pattern), handler: nil, acceptor: accept))
    }

    /// Declares a non-standard request header handlers need (`x-twilio-signature`, `webhook-signature`...):
    /// libwebsockets 4.1 can look unknown headers up by name but not list them.
    public func captureHeader(_ name: String) {
        state.withLock { _ = $0.headers.insert(name.lowercased()) }
    }

    /// Registers a function told about every answered request: route template (`"unmatched"` when no route
    /// matched), method and status. It runs on the loop thread: keep it to a counter increment.
    public func observeResponses(_ observer: @escaping @Sendable (_ route: String, _ method: String, _ status: Int) -> Void) {
        observerBox.withLock { $0 = observer }
    }

    var responseObserver: (@Sendable (String, String, Int) -> Void)? { observerBox.withLock { $0 } }
    private let observerBox = Mutex<(@Sendable (String, String, Int) -> Void)?>(nil)

    /// The non-standard header names to capture.
    public var capturedHeaders: Set<String> { state.withLock { $0.headers } }

    private func add(_ route: Route) {
        state.withLock {
            precondition(!$0.frozen, "routes are added before the server starts")
            $0.routes.append(route)
        }
    }

    func freeze() { state.withLock { $0.frozen = true } }

    /// Matches a request path (and whether it asks for a WebSocket upgrade).
    public func match(method: HTTPMethod?, path: String, webSocket: Bool) -> RouteMatch {
        let parts = Self.split(path)
        return state.withLock { s -> RouteMatch in
            var allowed: [HTTPMethod] = []
            var webSocketRoute: RouteMatch?
            for route in s.routes {
                guard let params = Self.bind(route.segments, parts) else { continue }
                if let accept = route.acceptor {
                    if webSocket { return .webSocket(accept, template: route.template, parameters: params) }
                    webSocketRoute = .webSocket(accept, template: route.template, parameters: params)
                    continue
                }
                if !webSocket, let m = route.method, let handler = route.handler {
                    if m == method || (method == .HEAD && m == .GET) {
                        return .handler(handler, template: route.template, parameters: params)
                    }
                    allowed.append(m)
                }
            }
            if !allowed.isEmpty {
                if allowed.contains(.GET) && !allowed.contains(.HEAD) { allowed.append(.HEAD) }
                return .methodNotAllowed(allowed: allowed)
            }
            // A plain request on a WebSocket-only path: the caller answers 426 Upgrade Required.
            return webSocketRoute ?? .notFound
        }
    }

    static func parse(_ pattern: String) -> [Segment] {
        split(pattern).map { s in
            if s.hasPrefix("{") && s.hasSuffix("}") && s.count > 2 { return .parameter(String(s.dropFirst().dropLast())) }
            return .literal(s)
        }
    }

    static func split(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    static func bind(_ segments: [Segment], _ parts: [String]) -> [String: String]? {
        guard segments.count == parts.count else { return nil }
        var params: [String: String] = [:]
        for (seg, part) in zip(segments, parts) {
            switch seg {
            case .literal(let l): if l != part { return nil }
            case .parameter(let name): params[name] = part
            }
        }
        return params
    }
}
