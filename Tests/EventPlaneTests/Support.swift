// What the event-plane tests share: a gateway with the default tenant's Pusher app, an API key and its own data
// directory.
import Foundation
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
