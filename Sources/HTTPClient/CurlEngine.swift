// The curl multi loop: one thread owns the multi handle and every easy handle; other threads only append to
// its command queue and call curl_multi_wakeup (documented as safe from any thread).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
internal import CCurl

enum CurlCommand: Sendable {
    case start(id: UInt64, request: HTTPClientRequest, continuation: CheckedContinuation<HTTPClientResponse, any Error>)
    case cancel(id: UInt64)
}

/// One transfer's state, owned by the engine thread.
final class CurlTransfer {
    let id: UInt64
    let easy: UnsafeMutableRawPointer
    let continuation: CheckedContinuation<HTTPClientResponse, any Error>
    let maxBytes: Int
    let displayURL: String
    var headerList: UnsafeMutablePointer<curl_slist>?
    var requestBody: [UInt8]
    var body: [UInt8] = []
    var headers: [(String, String)] = []
    var tooLarge = false

    init(id: UInt64, easy: UnsafeMutableRawPointer, continuation: CheckedContinuation<HTTPClientResponse, any Error>,
         maxBytes: Int, displayURL: String, requestBody: [UInt8]) {
        self.id = id
        self.easy = easy
        self.continuation = continuation
        self.maxBytes = maxBytes
        self.displayURL = displayURL
        self.requestBody = requestBody
    }
}

final class CurlEngine: @unchecked Sendable {
    private let configuration: HTTPClient.Configuration
    private let logger: Logger
    private let multi: UnsafeMutableRawPointer
    private let commands = Mutex<(queue: [CurlCommand], stopped: Bool)>(([], false))
    private let ids = Atomic<UInt64>(1)
    private let finished = Atomic<Bool>(false)
    // Engine-thread state.
    private var transfers: [UInt64: CurlTransfer] = [:]

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init(configuration: HTTPClient.Configuration, logger: Logger) {
        _ = Self.globalInit
        self.configuration = configuration
        self.logger = logger
        multi = curl_multi_init()
        _ = CCurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        let thread = Thread { [self] in self.run() }
        thread.name = "patchbay-http-client"
        thread.start()
    }

    func nextID() -> UInt64 { ids.wrappingAdd(1, ordering: .relaxed).oldValue }

    func submit(_ command: CurlCommand) {
        let accepted = commands.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.queue.append(command)
            return true
        }
        if accepted {
            curl_multi_wakeup(multi)
        } else if case .start(_, let request, let continuation) = command {
            continuation.resume(throwing: HTTPClientError(kind: .shutdown, curlCode: 0, message: "HTTP client is shut down", url: Self.display(request.url)))
        }
    }

    func shutdown() {
        let first = commands.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        curl_multi_wakeup(multi)
        while !finished.load(ordering: .acquiring) { usleep(1000) }
    }

    private func run() {
        var running: Int32 = 0
        while true {
            let (batch, stopped) = commands.withLock { state -> ([CurlCommand], Bool) in
                let b = state.queue
                state.queue.removeAll(keepingCapacity: true)
                return (b, state.stopped)
            }
            for command in batch { apply(command) }
            if stopped { break }
            curl_multi_perform(multi, &running)
            collectFinished()
            var numfds: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &numfds)
        }
        for (_, t) in transfers { finish(t, error: HTTPClientError(kind: .shutdown, curlCode: 0, message: "HTTP client is shut down", url: t.displayURL)) }
        transfers.removeAll()
        curl_multi_cleanup(multi)
        finished.store(true, ordering: .releasing)
    }

    private func apply(_ command: CurlCommand) {
        switch command {
        case .cancel(let id):
            if let t = transfers.removeValue(forKey: id) {
                curl_multi_remove_handle(multi, t.easy)
                finish(t, error: HTTPClientError(kind: .cancelled, curlCode: 0, message: "cancelled", url: t.displayURL))
            }
        case .start(let id, let request, let continuation):
            start(id: id, request: request, continuation: continuation)
        }
    }

    private func start(id: UInt64, request: HTTPClientRequest, continuation: CheckedContinuation<HTTPClientResponse, any Error>) {
        let display = Self.display(request.url)
        let lower = request.url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), let easy = curl_easy_init() else {
            continuation.resume(throwing: HTTPClientError(kind: .invalidURL, curlCode: 0, message: "not an http(s) URL", url: display))
            return
        }
        let t = CurlTransfer(id: id, easy: easy, continuation: continuation,
                             maxBytes: request.maxResponseBytes ?? configuration.maxResponseBytes, displayURL: display, requestBody: request.body)
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_URL, request.url)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2)
        _ = CCurl_easy_setopt_long(easy, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS))
        if let ca = configuration.caFile { _ = CCurl_easy_setopt_pointer(easy, CURLOPT_CAINFO, ca) }
        _ = CCurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.millis(request.timeout ?? configuration.timeout))
        _ = CCurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.millis(request.connectTimeout ?? configuration.connectTimeout))
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_USERAGENT, configuration.userAgent)
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_ACCEPT_ENCODING, "")
        let method = request.method.uppercased()
        if method == "HEAD" {
            _ = CCurl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        } else if method != "GET" || !request.body.isEmpty {
            _ = CCurl_easy_setopt_pointer(easy, CURLOPT_CUSTOMREQUEST, method)
            _ = CCurl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
            _ = t.requestBody.withUnsafeBytes { CCurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!) }
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
        // No "Expect: 100-continue" round trip for bodies: providers answer at once.
        list = curl_slist_append(list, "Expect:")
        t.headerList = list
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, list)
        let opaque = Unmanaged.passUnretained(t).toOpaque()
        _ = CCurl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, curlWrite)
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, opaque)
        _ = CCurl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, curlHeader)
        _ = CCurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, opaque)
        transfers[id] = t
        curl_multi_add_handle(multi, easy)
    }

    private func collectFinished() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = message.pointee.data.result
            guard let entry = transfers.first(where: { $0.value.easy == easy }) else { continue }
            let t = entry.value
            transfers[entry.key] = nil
            curl_multi_remove_handle(multi, easy)
            if code == CURLE_OK {
                var status: Int = 0
                _ = CCurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
                finish(t, response: HTTPClientResponse(status: status, headers: t.headers, body: t.body))
            } else {
                finish(t, error: Self.error(code, transfer: t))
            }
        }
    }

    private func finish(_ t: CurlTransfer, response: HTTPClientResponse? = nil, error: HTTPClientError? = nil) {
        curl_easy_cleanup(t.easy)
        curl_slist_free_all(t.headerList)
        if let response { t.continuation.resume(returning: response) } else if let error { t.continuation.resume(throwing: error) }
    }

    static func error(_ code: CURLcode, transfer t: CurlTransfer) -> HTTPClientError {
        let message = String(cString: curl_easy_strerror(code))
        let kind: HTTPClientError.Kind
        switch code {
        case CURLE_OPERATION_TIMEDOUT: kind = .timedOut
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING:
            kind = .connectFailed
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM:
            kind = .tlsFailed
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: kind = .invalidURL
        case CURLE_WRITE_ERROR where t.tooLarge, CURLE_FILESIZE_EXCEEDED: kind = .responseTooLarge
        default: kind = .other
        }
        return HTTPClientError(kind: kind, curlCode: Int(code.rawValue),
                               message: kind == .responseTooLarge ? "response body exceeds \(t.maxBytes) bytes" : message, url: t.displayURL)
    }

    static func millis(_ d: Duration) -> Int {
        let (s, a) = d.components
        return max(1, Int(s) * 1000 + Int(a / 1_000_000_000_000_000))
    }

    /// The URL without query or fragment, for errors and logs.
    static func display(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" })
    }
}

private let curlWrite: CCurl_data_callback = { ptr, size, count, user in
    guard let user else { return 0 }
    let t = Unmanaged<CurlTransfer>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    if t.body.count + n > t.maxBytes { t.tooLarge = true; return 0 } // aborts the transfer: CURLE_WRITE_ERROR
    if let ptr, n > 0 { t.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: n)) }
    return n
}

private let curlHeader: CCurl_data_callback = { ptr, size, count, user in
    guard let user, let ptr else { return 0 }
    let t = Unmanaged<CurlTransfer>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: n), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        t.headers.removeAll() // a new response (after 100 Continue or an informational status)
    } else if let colon = line.firstIndex(of: ":") {
        let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
        let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespacesAndNewlines)
        t.headers.append((name, value))
    }
    return n
}
