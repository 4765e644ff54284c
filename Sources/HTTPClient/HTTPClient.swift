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

    /// libcurl's version string (for `patchbay version`).
    public static var libraryVersion: String { String(cString: curl_version()) }
}
