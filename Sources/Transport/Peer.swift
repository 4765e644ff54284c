// Per-connection state (one `Peer` per lws wsi), loop-owned. Retained once in the wsi's opaque user data,
// released in LWS_CALLBACK_WSI_DESTROY.
internal import CWebSockets

final class Peer {
    let id: UInt64
    var wsi: OpaquePointer?

    // HTTP request in progress.
    var method: HTTPMethod?
    var routeTemplate = "unmatched"
    var path = ""
    var query = ""
    var headers = HTTPHeaders()
    var body: [UInt8] = []
    var remoteAddress = ""
    var awaitingBody = false
    var rejected = false
    var countedInFlight = false
    var awaitingHandler = false
    var response: HTTPResponse?
    var headOnly = false
    var closeAfterResponse = false

    // WebSocket, once upgraded (server) or connecting (client).
    var webSocket: WebSocketConnection?
    // Raw fallback: what lws could not parse as HTTP gets a 400 and a close.
    var isRawFallback = false

    init(id: UInt64, wsi: OpaquePointer?) {
        self.id = id
        self.wsi = wsi
    }

    var hasRequestInProgress: Bool { method != nil || awaitingHandler || response != nil }

    func resetRequest() {
        method = nil
        routeTemplate = "unmatched"
        path = ""
        query = ""
        headers = HTTPHeaders()
        body.removeAll(keepingCapacity: true)
        awaitingBody = false
        rejected = false
        awaitingHandler = false
        response = nil
        headOnly = false
        closeAfterResponse = false
    }
}
