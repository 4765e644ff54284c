// `X-Twilio-Signature` (shared/protocols/twilio-media-streams.md §10): base64(HMAC-SHA1(auth token, URL + sorted
// params)), compared in constant time. The signed string is built by WireFormats.
import WireFormats

/// Computes and checks Twilio request signatures.
public enum TwilioRequestSignature {
    /// The signature Twilio would send for `url` and form `parameters` (none for a WebSocket upgrade).
    public static func compute(authToken: String, url: String, parameters: [(String, String)] = []) -> String {
        Base64.encode(Signing.hmac(.sha1, key: authToken, message: TwilioSignatureString.make(url: url, parameters: parameters)))
    }

    /// Whether `signature` matches `url` and `parameters` under `authToken`. Like twilio-python, an `https` URL is
    /// also tried with its default port `:443` added or removed (§10 step 4).
    public static func isValid(_ signature: String, authToken: String, url: String, parameters: [(String, String)] = []) -> Bool {
        guard !authToken.isEmpty, !signature.isEmpty else { return false }
        var candidates = [url]
        if url.hasPrefix("https://") || url.hasPrefix("wss://") {
            let scheme = url.hasPrefix("https://") ? "https://" : "wss://"
            let rest = url.dropFirst(scheme.count)
            let hostEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let host = rest[..<hostEnd]
            if host.hasSuffix(":443") {
                candidates.append(scheme + host.dropLast(4) + rest[hostEnd...])
            } else if !host.contains(":") {
                candidates.append(scheme + host + ":443" + rest[hostEnd...])
            }
        }
        var ok = false
        for candidate in candidates {
            // Evaluate every candidate so timing does not reveal which form matched.
            if Signing.constantTimeEqual(compute(authToken: authToken, url: candidate, parameters: parameters), signature) { ok = true }
        }
        return ok
    }
}
