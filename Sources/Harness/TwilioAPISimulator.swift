// Twilio's REST call-update endpoint, simulated (twilio-media-streams.md §9): `POST
// /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with `Status=completed` and HTTP Basic auth. A call placed by
// a `CallerSimulator` registered here then ends the way Twilio ends it: `stop`, then the socket closes. Unknown
// calls get Twilio's 404 (code 20404).
import Foundation
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

/// The simulated Twilio REST API.
public final class TwilioAPISimulator: Sendable {
    let server: Server
    let accountSID: String
    let authToken: String
    private let calls = Mutex<[String: (loop: EventLoop, session: LoopBound<CallerSession>)]>([:])
    private let log = Mutex<[(callSID: String, body: String)]>([])

    public init(accountSID: String, authToken: String, host: String = "127.0.0.1", port: Int = 0, logger: Logger) {
        self.accountSID = accountSID
        self.authToken = authToken
        var settings = ServerConfiguration()
        settings.host = host
        settings.port = port
        settings.loops = 1
        let router = Router()
        server = Server(configuration: settings, router: router, logger: logger)
        router.on(.POST, "/2010-04-01/Accounts/{account}/Calls/{call}") { [self] req in try update(req) }
    }

    public func start() throws { try server.start() }
    public var port: Int { server.port }
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public func shutdown() async { await server.shutdown(timeout: .seconds(2)) }

    /// Every accepted update: the call and the form body.
    public var updates: [(callSID: String, body: String)] { log.withLock { $0 } }

    func register(callSID: String, loop: EventLoop, session: CallerSession) {
        calls.withLock { $0[callSID] = (loop, LoopBound(session)) }
    }

    func update(_ req: HTTPRequest) throws -> HTTPResponse {
        let expected = "Basic " + Data("\(accountSID):\(authToken)".utf8).base64EncodedString()
        guard let auth = req.headers["authorization"], Signing.constantTimeEqual(auth, expected),
              req.pathParameters["account"] == accountSID else {
            return .json(401, "{\"code\":20003,\"message\":\"Authenticate\",\"status\":401}")
        }
        guard var call = req.pathParameters["call"], call.hasSuffix(".json") else {
            return .json(404, "{\"code\":20404,\"message\":\"The requested resource was not found\",\"status\":404}")
        }
        call.removeLast(5)
        let params = FormEncoding.decode(req.bodyText)
        guard let entry = calls.withLock({ $0.removeValue(forKey: call) }) else {
            return .json(404, "{\"code\":20404,\"message\":\"The requested resource was not found\",\"status\":404}")
        }
        log.withLock { $0.append((call, req.bodyText)) }
        if params.contains(where: { $0.0 == "Status" && $0.1 == "completed" }) {
            entry.loop.execute { entry.session.value.remoteHangUp() }
        }
        return .json(200, "{\"sid\":\(JSONString.quote(call)),\"status\":\"completed\"}")
    }
}
