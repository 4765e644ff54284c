// What the event-plane tests share: a gateway with the default tenant's Pusher app, an API key and its own data
// directory.
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PatchbayServer

let testAPIKey = "dashboard-key-0123456789abcdef"

/// A started gateway with Pusher app 4242 / pbkey123 / pbsecret456 (the reference's example values); `extra`
/// adds or overrides environment variables. Remove `data` when done.
func startGateway(data: String = NSTemporaryDirectory() + "patchbay-events-" + UUID().uuidString, loops: Int = 1,
                  extra: [String: String] = [:]) throws -> (app: Application, data: String) {
    var env = [
        "PATCHBAY_PORT": "0", "PATCHBAY_LOOPS": String(loops), "PATCHBAY_DATA_DIR": data, "PATCHBAY_API_KEYS": testAPIKey,
        "PATCHBAY_PUSHER_APP_ID": "4242", "PATCHBAY_PUSHER_APP_KEY": "pbkey123", "PATCHBAY_PUSHER_APP_SECRET": "pbsecret456",
    ]
    for (k, v) in extra { env[k] = v }
    var logger = Logger(label: "test.events")
    logger.logLevel = .critical
    let app = Application(config: try ConfigLoader.load(environment: env), logger: logger)
    try app.start()
    return (app, data)
}

/// Starts `Tests/python/webhook_receiver.py` (signatures checked with the standardwebhooks library) and waits until it
/// listens. `delay`: seconds it holds each request before answering.
func startReceiver(port: Int, secret: String, failFirst: Int, out: String, delay: Double = 0) async throws -> Process {
    try await startPythonServer("webhook_receiver.py", port: port, [secret, String(failFirst), out, String(delay)])
}

/// Starts `Tests/python/<script> PORT arguments...` and waits until it listens on `port`.
func startPythonServer(_ script: String, port: Int, _ arguments: [String]) async throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: testPython)
    p.arguments = [repositoryRoot.appendingPathComponent("Tests/python/" + script).path, String(port)] + arguments
    try p.run()
    _ = await eventually(seconds: 5) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }
    return p
}

/// The receiver's log, one object per line.
func lines(_ path: String) -> [[String: Any]] {
    (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    } ?? []
}
