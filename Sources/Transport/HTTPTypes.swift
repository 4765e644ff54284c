// HTTP value types shared by the server, the router and every plane's handlers. Pure values: no lws, no I/O.
import WireFormats

/// Request methods the router knows. Anything else is answered 405 (or 400 if it is not HTTP at all).
public enum HTTPMethod: String, Sendable, Hashable, CaseIterable {
    case GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS
}

/// HTTP header fields: case-insensitive names (stored lowercased, RFC 9110 §5.1), order kept, repeats allowed.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, Equatable {
    private var fields: [(name: String, value: String)] = []

    /// No fields.
    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (n, v) in elements { add(name: n, value: v) }
    }

    /// Appends a field (the name is lowercased).
    public mutating func add(name: String, value: String) {
        fields.append((name.lowercased(), value))
    }

    /// Replaces every field of that name with one.
    public mutating func replaceOrAdd(name: String, value: String) {
        let n = name.lowercased()
        fields.removeAll { $0.name == n }
        fields.append((n, value))
    }

    /// The first value of `name`, case-insensitively; nil when absent.
    public subscript(name: String) -> String? {
        let n = name.lowercased()
        return fields.first { $0.name == n }?.value
    }

    /// Every value of `name`.
    public func values(_ name: String) -> [String] {
        let n = name.lowercased()
        return fields.filter { $0.name == n }.map(\.value)
    }

    /// Whether a field of that name is present.
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Number of fields.
    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// A complete HTTP request (headers and whole body), as a handler sees it.
public struct HTTPRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The path, percent-decoded by lws, without the query.
    public var path: String
    /// The query string without `?` (empty when none).
    public var query: String
    /// Header fields. Standard fields are all present; of non-standard ones, those the router declared it needs
    /// (`Router.captureHeader`) — libwebsockets 4.1 cannot enumerate unknown headers, only look them up by name.
    public var headers: HTTPHeaders
    /// The body (empty for none).
    public var body: [UInt8]
    /// Values of the `{name}` segments of the matched route.
    public var pathParameters: [String: String]
    /// The peer's address (IP only).
    public var remoteAddress: String

    /// A request value (tests and in-process callers).
    public init(method: HTTPMethod, path: String, query: String = "", headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
                pathParameters: [String: String] = [:], remoteAddress: String = "127.0.0.1") {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.pathParameters = pathParameters
        self.remoteAddress = remoteAddress
    }

    /// The query's `name=value` pairs, percent-decoded (`+` as space, as HTML forms encode).
    public func queryItems() -> [(String, String)] { FormEncoding.decode(query) }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? { queryItems().first { $0.0 == name }?.1 }

    /// The body as UTF-8 text (invalid sequences repaired).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A response to send.
public struct HTTPResponse: Sendable {
    /// Status code.
    public var status: Int
    /// Header fields (content-length is added by the server).
    public var headers: HTTPHeaders
    /// Body bytes.
    public var body: [UInt8]

    /// A response; `content-type` goes in `headers`.
    public init(status: Int = 200, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response from already-serialised JSON text.
    public static func json(_ status: Int = 200, _ jsonText: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["content-type": "application/json"], body: Array(jsonText.utf8))
    }

    /// A text response.
    public static func text(_ status: Int = 200, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["content-type": contentType], body: Array(text.utf8))
    }
}

/// An error a handler throws to answer with PRODUCT.md's JSON error body `{"error": {"code", "message"}}`.
public struct HTTPError: Error, Sendable, Equatable {
    /// HTTP status.
    public var status: Int
    /// Stable machine-readable code (`not_found`, `payload_too_large`, `invalid_signature`...).
    public var code: String
    /// Human-readable explanation.
    public var message: String
    /// Extra response headers (`allow`, `retry-after`...).
    public var headers: HTTPHeaders

    /// An error with status, code and message.
    public init(_ status: Int, code: String, message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The JSON response this error renders as.
    public var response: HTTPResponse {
        var r = HTTPResponse.json(status, "{\"error\":{\"code\":\(JSONString.quote(code)),\"message\":\(JSONString.quote(message))}}")
        for (n, v) in headers { r.headers.add(name: n, value: v) }
        return r
    }

    /// 400 with code `bad_request`.
    public static func badRequest(_ message: String) -> HTTPError { HTTPError(400, code: "bad_request", message: message) }
    /// 404 with code `not_found`.
    public static func notFound(_ message: String = "no such resource") -> HTTPError { HTTPError(404, code: "not_found", message: message) }
    /// 500 with code `internal_error`.
    public static func internalError(_ message: String = "internal error") -> HTTPError { HTTPError(500, code: "internal_error", message: message) }
}

/// Reason phrases for the status line.
enum HTTPStatus {
    static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Content"
        case 426: return "Upgrade Required"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status \(status)"
        }
    }
}
