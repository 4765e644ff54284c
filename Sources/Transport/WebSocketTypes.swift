// WebSocket value types and the handler protocol: pure, no lws.

/// A WebSocket close status code (RFC 6455 §7.4; 4000-4999 for applications such as Pusher).
public struct WebSocketCloseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ code: UInt16) { self.rawValue = code }

    /// 1000: the purpose of the connection is fulfilled.
    public static let normal = WebSocketCloseCode(1000)
    /// 1001: the server is going away (shutdown) or the client navigated away.
    public static let goingAway = WebSocketCloseCode(1001)
    /// 1002: protocol error.
    public static let protocolError = WebSocketCloseCode(1002)
    /// 1003: a data type the endpoint cannot accept.
    public static let unsupportedData = WebSocketCloseCode(1003)
    /// 1005: no status code was present (never sent on the wire).
    public static let noStatus = WebSocketCloseCode(1005)
    /// 1006: the connection closed with no close frame (never sent on the wire).
    public static let abnormal = WebSocketCloseCode(1006)
    /// 1007: invalid payload data (e.g. text that is not UTF-8).
    public static let invalidPayload = WebSocketCloseCode(1007)
    /// 1008: a message violates policy (authentication, protocol sequence).
    public static let policyViolation = WebSocketCloseCode(1008)
    /// 1009: a message is too big to process.
    public static let messageTooBig = WebSocketCloseCode(1009)
    /// 1011: the server met an unexpected condition.
    public static let internalError = WebSocketCloseCode(1011)
    /// 1013: try again later (overload).
    public static let tryAgainLater = WebSocketCloseCode(1013)
    /// 1015: TLS handshake failure (never sent on the wire; reported for failed wss connections).
    public static let tlsFailure = WebSocketCloseCode(1015)

    public var description: String { String(rawValue) }
}

/// One complete WebSocket message as delivered to a handler. `bytes` points into a buffer owned by the
/// connection or by lws and is valid only during the `didReceive` call: copy what must outlive it.
public struct WebSocketMessage {
    /// Text (UTF-8) or binary.
    public enum Kind: Sendable { case text, binary }
    /// The message's kind.
    public let kind: Kind
    /// The payload, valid during the callback only.
    public let bytes: UnsafeRawBufferPointer

    /// The payload as a String (a copy).
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    /// The payload as an array (a copy).
    public var array: [UInt8] { Array(bytes) }
}

/// The outcome of a send.
public enum SendResult: Sendable, Equatable {
    /// Handed to the kernel (or to lws's partial-write buffer) now.
    case sent
    /// The socket is choked: queued, to go when it drains.
    case queued
    /// The outbound queue is full (the peer cannot keep up) or the connection is closing: dropped and counted.
    case dropped
}

/// Receives one WebSocket's events. Loop-owned: every call comes on the connection's event-loop thread, so an
/// implementation needs no lock. Keep work per message small; hand heavy work to another thread.
public protocol WebSocketHandler: AnyObject {
    /// The connection is open (server: after the upgrade; client: after the handshake).
    func webSocketDidOpen(_ connection: WebSocketConnection)
    /// A complete message arrived.
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage)
    /// The connection closed (or, for a client, failed to connect): the code the peer sent, or 1006 with no
    /// close frame, 1015 for a TLS failure. Called exactly once, last.
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String)
    /// A message over `maxMessageBytes` is arriving: the connection closes with 1009 right after this returns, and
    /// a last message sent here (a protocol's own error) goes out before the close. Optional.
    func webSocketMessageTooLarge(_ connection: WebSocketConnection)
    /// The messages that had to queue while the socket was choked have all been written: a sender that paused for
    /// room (a replay) can go on. Optional.
    func webSocketQueueDrained(_ connection: WebSocketConnection)
}

extension WebSocketHandler {
    public func webSocketMessageTooLarge(_ connection: WebSocketConnection) {}
    public func webSocketQueueDrained(_ connection: WebSocketConnection) {}
}
