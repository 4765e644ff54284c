// Reading TwiML back (simulators and tests): the `<Parameter name value/>`s of a `<Stream>`
// (twilio-media-streams.md §2.2). Only what a caller needs; not a general XML parser.

public enum TwiML {
    /// Name -> value of every `<Parameter name="…" value="…"/>`, XML entities resolved.
    public static func streamParameters(_ xml: String) -> [String: String] {
        var out: [String: String] = [:]
        var rest = Substring(xml)
        while let open = rest.firstRange(of: "<Parameter ") {
            rest = rest[open.upperBound...]
            guard let close = rest.firstRange(of: "/>") else { break }
            let tag = rest[..<close.lowerBound]
            if let name = attribute("name", in: tag), let value = attribute("value", in: tag) { out[name] = value }
            rest = rest[close.upperBound...]
        }
        return out
    }

    static func attribute(_ name: String, in tag: Substring) -> String? {
        guard let start = tag.firstRange(of: " " + name + "=\"") ?? (tag.hasPrefix(name + "=\"") ? tag.firstRange(of: name + "=\"") : nil) else { return nil }
        let after = tag[start.upperBound...]
        guard let end = after.firstIndex(of: "\"") else { return nil }
        return unescape(after[..<end])
    }

    static func unescape(_ s: Substring) -> String {
        var out = String(s)
        for (entity, char) in [("&quot;", "\""), ("&apos;", "'"), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")] {
            out = out.replacing(entity, with: char)
        }
        return out
    }
}
