// `POST /twilio/voice` (TwiML that connects the call to the media stream) and `POST /twilio/status` (call and
// stream status callbacks). Both check `X-Twilio-Signature` over the public URL and every form parameter
// (twilio-media-streams.md §2, §8, §10).
import Events
import Foundation
import Signing
import Transport
import WireFormats

extension MediaBridge {
    /// Checks the webhook signature against `tenant`; throws 403 when it does not match.
    func verifyWebhook(_ req: HTTPRequest, tenant: BridgeTenant, parameters: [(String, String)]) throws {
        guard let token = tenant.twilioAuthToken, !token.isEmpty else {
            throw HTTPError(403, code: "twilio_not_configured", message: "tenant \(tenant.id) has no Twilio auth token to check signatures")
        }
        guard let signature = req.headers["x-twilio-signature"], !signature.isEmpty else {
            throw HTTPError(403, code: "missing_signature", message: "X-Twilio-Signature is required")
        }
        let url = webhookURL(req)
        guard TwilioRequestSignature.isValid(signature, authToken: token, url: url, parameters: parameters) else {
            throw HTTPError(403, code: "invalid_signature", message: "X-Twilio-Signature does not match \(url) and the form parameters")
        }
    }

    static func formParameters(_ req: HTTPRequest) throws -> [(String, String)] {
        let type = req.headers["content-type"]?.lowercased() ?? ""
        guard type.hasPrefix("application/x-www-form-urlencoded") else {
            throw HTTPError(415, code: "unsupported_media_type", message: "expected application/x-www-form-urlencoded")
        }
        return FormEncoding.decode(req.bodyText)
    }

    func voiceWebhook(_ req: HTTPRequest) throws -> HTTPResponse {
        let params = try Self.formParameters(req)
        func value(_ name: String) -> String? { params.first { $0.0 == name }?.1 }
        guard let callSID = value("CallSid"), TwilioStart.isPlainID(callSID) else {
            throw HTTPError(400, code: "bad_request", message: "CallSid is missing or malformed")
        }
        let to = value("To") ?? value("Called") ?? ""
        let from = value("From") ?? value("Caller") ?? ""
        guard let tenant = tenant(forCalled: to) else {
            throw HTTPError(404, code: "unknown_number", message: "no tenant owns the number \(to)")
        }
        try verifyWebhook(req, tenant: tenant, parameters: params)
        let say = "<Say language=\"\(xml(settings.fallbackSayLanguage))\">\(xml(settings.fallbackSayText))</Say>"
        guard let agent = tenant.agent(forCalled: to) else {
            logger.warning("call refused: no agent for number", metadata: ["tenant": "\(tenant.id)", "to": "\(to)"])
            return twiml("<Response>\(say)<Hangup/></Response>")
        }
        let callID = PatchbayEvent.prefixedID("call_")
        let parameters: [(String, String)] = [
            ("tenant", tenant.id), ("agent", agent), ("call_id", callID), ("from", from), ("to", to),
            ("token", Self.callToken(tenant: tenant, callSID: callSID)),
        ]
        let base = publicBase(req)
        let stream = streamURL(req)
        var body = "<Response><Connect><Stream url=\"\(xml(stream))\" name=\"pb-\(xml(callSID))\" statusCallback=\"\(xml(base))/twilio/status\" statusCallbackMethod=\"POST\">"
        for (name, v) in parameters { body += "<Parameter name=\"\(xml(name))\" value=\"\(xml(v))\"/>" }
        // Normal ends hang up through the REST API; this only runs if the media stream itself fails (§9).
        body += "</Stream></Connect>\(say)<Hangup/></Response>"
        return twiml(body)
    }

    func statusCallback(_ req: HTTPRequest) throws -> HTTPResponse {
        let params = try Self.formParameters(req)
        func value(_ name: String) -> String? { params.first { $0.0 == name }?.1 }
        let to = value("To") ?? value("Called") ?? ""
        // Stream callbacks carry no number: the account picks the tenant.
        let tenant = value("AccountSid").flatMap { sid in tenants.first { $0.twilioAccountSID == sid } } ?? tenant(forCalled: to)
        guard let tenant else { throw HTTPError(404, code: "unknown_account", message: "no tenant for this account or number") }
        try verifyWebhook(req, tenant: tenant, parameters: params)
        let callSID = value("CallSid") ?? ""
        var data: [(String, JSONValue)] = [("twilio_call_sid", .string(callSID))]
        for key in ["CallStatus", "StreamEvent", "StreamSid", "StreamName", "StreamError", "CallDuration", "Timestamp", "SequenceNumber"] {
            if let v = value(key) { data.append((Self.snake(key), .string(v))) }
        }
        events.publish(PatchbayEvent(type: "call.status", tenant: tenant.id, occurredAtMillis: PatchbayEvent.nowMillis(),
                                     conversationID: callSID, callID: nil, data: .object(data)))
        return HTTPResponse(status: 204)
    }

    static func snake(_ s: String) -> String {
        var out = ""
        for (i, c) in s.enumerated() {
            if c.isUppercase && i > 0 { out += "_" }
            out += c.lowercased()
        }
        return out
    }

    private func twiml(_ body: String) -> HTTPResponse {
        HTTPResponse(status: 200, headers: ["content-type": "text/xml; charset=utf-8"],
                     body: Array(("<?xml version=\"1.0\" encoding=\"UTF-8\"?>" + body).utf8))
    }

    private func xml(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}
