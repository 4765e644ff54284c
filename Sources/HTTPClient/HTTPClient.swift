import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
internal import CCurl

/// Outbound HTTP over libcurl. One multi handle driven by one dedicated thread (not the Swift cooperative pool,
/// which has two threads here and must never block); connections are kept alive and reused per host.
public final class HTTPClient: Sendable {
    /// Defaults applied to every request.
    public struct Configuration: Sendable {
        /// Whole-exchange time limit.
        public var timeout: Duration = .seconds(15)
        /// Connect (TCP + TLS) time limit.
        public var connectTimeout: Duration = .seconds(5)
        /// Largest response body accepted.
        public var maxResponseBytes: Int = 8 << 20
        /// An extra CA bundle to trust (tests, private CAs); the system store is always trusted.
        public var caFile: String?
        /// `User-Agent` header.
        public var userAgent: String = "patchbay"
        /// Connections kept per host.
        public var maxConnectionsPerHost: Int = 16

        public init() {}
    }

    let configuration: Configuration
    private let engine: CurlEngine

    /// Starts the client's thread.
    public init(configuration: Configuration = Configuration(), logger: Logger) {
        self.configuration = configuration
        engine = CurlEngine(configuration: configuration, logger: logger)
    }

    deinit { engine.shutdown() }

    /// Performs `request`; any HTTP status is a response. Throws `HTTPClientError` for failures (time-out,
    /// connection, TLS verification, oversized body, cancellation of the calling task, shutdown).
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let id = engine.nextID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPClientResponse, any Error>) in
                engine.submit(.start(id: id, request: request, continuation: continuation))
            }
        } onCancel: {
            engine.submit(.cancel(id: id))
        }
    }

    /// Fails every transfer in flight with `.shutdown` and stops the thread. Idempotent.
    public func shutdown() { engine.shutdown() }

    /// Resolves `host` with getaddrinfo on a Dispatch thread (never on an event loop, never on the cooperative
    /// pool); the first IPv4 address, else the first IPv6 one.
    public static func resolve(host: String, port: Int) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var result: UnsafeMutablePointer<addrinfo>?
                let rc = getaddrinfo(host, String(port), &hints, &result)
                guard rc == 0, let first = result else {
                    continuation.resume(throwing: HTTPClientError(kind: .connectFailed, curlCode: 0,
                                                                  message: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))", url: host))
                    return
                }
                defer { freeaddrinfo(first) }
                var v4: String?, v6: String?
                var cursor: UnsafeMutablePointer<addrinfo>? = first
                while let ai = cursor {
                    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                    if ai.pointee.ai_family == AF_INET, v4 == nil, let sa = ai.pointee.ai_addr {
                        sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { var a = $0.pointee.sin_addr; _ = inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count)) }
                        v4 = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    } else if ai.pointee.ai_family == AF_INET6, v6 == nil, let sa = ai.pointee.ai_addr {
                        sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { var a = $0.pointee.sin6_addr; _ = inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count)) }
                        v6 = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    }
                    cursor = ai.pointee.ai_next
                }
                if let address = v4 ?? v6 { continuation.resume(returning: address) } else {
                    continuation.resume(throwing: HTTPClientError(kind: .connectFailed, curlCode: 0, message: "no address for \(host)", url: host))
                }
            }
        }
    }

    /// libcurl's version string (for `patchbay version`).
    public static var libraryVersion: String { String(cString: curl_version()) }
}
