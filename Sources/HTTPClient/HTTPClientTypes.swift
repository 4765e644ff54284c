// HTTPClient: outbound HTTP (provider REST APIs, signed URLs, webhooks) through libcurl's multi interface,
// driven by one dedicated thread per client; callers use async/await. The only importer of CCurl.
// Never used on an lws loop thread's per-frame path: await it from tasks.

/// An outbound request.
public struct HTTPClientRequest: Sendable {
    /// `GET`, `POST`, ...
    public var method: String
    /// Absolute `http` or `https` URL.
    public var url: String
    /// Header fields, in order.
    public var headers: [(String, String)]
    /// Body bytes (sent with Content-Length).
    public var body: [UInt8]
    /// Time limit for the whole exchange; nil uses the client's default.
    public var timeout: Duration?
    /// Time limit for connecting (TCP + TLS); nil uses the client's default.
    public var connectTimeout: Duration?
    /// Largest response body accepted; nil uses the client's default. Past it the transfer is aborted.
    public var maxResponseBytes: Int?

    /// A request.
    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8] = [],
                timeout: Duration? = nil, connectTimeout: Duration? = nil, maxResponseBytes: Int? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
    }
}

/// A response (any status: a 4xx or 5xx is a response, not an error).
public struct HTTPClientResponse: Sendable {
    /// Status code.
    public var status: Int
    /// Header fields of the final response, names as sent.
    public var headers: [(String, String)]
    /// Body bytes.
    public var body: [UInt8]

    /// The first value of header `name`, case-insensitively.
    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0.lowercased() == n }?.1
    }

    /// The body as UTF-8 text.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request produced no response.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure.
    public enum Kind: String, Sendable {
        case timedOut, connectFailed, tlsFailed, responseTooLarge, invalidURL, cancelled, shutdown, other
    }
    /// The kind of failure.
    public var kind: Kind
    /// libcurl's code (0 when the failure is ours).
    public var curlCode: Int
    /// libcurl's message or ours.
    public var message: String
    /// The URL without its query (which may carry secrets).
    public var url: String

    public var description: String { "\(kind.rawValue) (\(url)): \(message)" }

    static func == (a: HTTPClientError, b: HTTPClientError.Kind) -> Bool { a.kind == b }
}
