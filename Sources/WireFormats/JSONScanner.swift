// A zero-allocation JSON scanner: finds members of objects by key and hands back spans into the caller's bytes.
// It validates structure (balanced brackets, strings, literals, commas and colons) while skipping values; number
// grammar is checked loosely. Used for every provider message on the per-frame path (Twilio `media`, ElevenLabs
// `audio`), where a general decoder costs 30-40x more (shared/notes/c-interop.md: 4.1 us vs 0.1 us).

/// Where a JSON value sits in the scanned bytes.
public struct JSONSpan: Sendable, Equatable {
    /// The kind of value.
    public enum Kind: Sendable, Equatable { case string, number, object, array, bool, null }
    /// The kind.
    public var kind: Kind
    /// First byte: for a string, the first byte after the opening quote.
    public var start: Int
    /// One past the last byte: for a string, the closing quote.
    public var end: Int
    /// A string that contains backslash escapes (its bytes are not its value as they stand).
    public var hasEscapes: Bool
    /// For `bool`: its value.
    public var isTrue: Bool

    /// Byte count of the span.
    public var count: Int { end - start }
}

/// Scans one JSON document in `bytes` (valid while the scanner is used; nothing is copied).
public struct JSONScanner {
    /// The document.
    public let bytes: UnsafeRawBufferPointer

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The top-level value when the whole document is one well-formed object (whitespace around it allowed).
    public func rootObject() -> JSONSpan? {
        let i = skipWhitespace(0)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{"), let span = value(at: i),
              skipWhitespace(span.end) == bytes.count else { return nil }
        return span
    }

    /// The member `key` of the object `object` (keys compared byte for byte, unescaped).
    public func member(_ key: StaticString, of object: JSONSpan) -> JSONSpan? {
        guard object.kind == .object else { return nil }
        var found: JSONSpan?
        key.withUTF8Buffer { k in
            forEachMember(of: object) { name, value in
                if sameBytes(name, k) {
                    found = value
                    return false
                }
                return true
            }
        }
        return found
    }

    /// Calls `body` with each member's key span (a string span) and value span, until it returns false.
    public func forEachMember(of object: JSONSpan, _ body: (JSONSpan, JSONSpan) -> Bool) {
        guard object.kind == .object else { return }
        var i = skipWhitespace(object.start + 1)
        if i < bytes.count && bytes[i] == UInt8(ascii: "}") { return }
        while i < object.end {
            guard let name = string(at: i) else { return }
            i = skipWhitespace(name.end + 1)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return }
            i = skipWhitespace(i + 1)
            guard let v = value(at: i) else { return }
            if !body(name, v) { return }
            i = skipWhitespace(after(v))
            guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { return }
            i = skipWhitespace(i + 1)
        }
    }

    /// Calls `body` with each element of an array.
    public func forEachElement(of array: JSONSpan, _ body: (JSONSpan) -> Bool) {
        guard array.kind == .array else { return }
        var i = skipWhitespace(array.start + 1)
        if i < bytes.count && bytes[i] == UInt8(ascii: "]") { return }
        while i < array.end {
            guard let v = value(at: i) else { return }
            if !body(v) { return }
            i = skipWhitespace(after(v))
            guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { return }
            i = skipWhitespace(i + 1)
        }
    }

    /// Whether a string span equals `literal` exactly.
    public func equals(_ span: JSONSpan, _ literal: StaticString) -> Bool {
        guard span.kind == .string, !span.hasEscapes else { return false }
        return literal.withUTF8Buffer { k in sameBytes(span, k) }
    }

    /// The raw bytes of a span (for a string: without quotes, escapes as they stand).
    public func raw(_ span: JSONSpan) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[span.start..<span.end])
    }

    /// An integer from a number, or from a string holding one (Twilio sends `"sequenceNumber": "2"`).
    public func integer(_ span: JSONSpan) -> Int64? {
        guard span.kind == .number || (span.kind == .string && !span.hasEscapes), span.count > 0, span.count <= 19 else { return nil }
        var i = span.start, negative = false
        if bytes[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        guard i < span.end else { return nil }
        var v: Int64 = 0
        while i < span.end {
            let c = bytes[i]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + Int64(c - 48)
            i += 1
        }
        return negative ? -v : v
    }

    /// A number as a Double (allocates a small string: not for the per-frame path).
    public func double(_ span: JSONSpan) -> Double? {
        guard span.kind == .number || span.kind == .string else { return nil }
        return Double(String(decoding: raw(span), as: UTF8.self))
    }

    /// A string's value with escapes resolved (allocates: control messages only).
    public func string(_ span: JSONSpan) -> String? {
        guard span.kind == .string else { return nil }
        if !span.hasEscapes { return String(decoding: raw(span), as: UTF8.self) }
        var out = [UInt8]()
        out.reserveCapacity(span.count)
        var i = span.start
        while i < span.end {
            let c = bytes[i]
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            guard i + 1 < span.end else { return nil }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard i + 4 <= span.end, var scalar = hex4(i) else { return nil }
                i += 4
                if scalar >= 0xD800 && scalar < 0xDC00, i + 6 <= span.end, bytes[i] == UInt8(ascii: "\\"),
                   bytes[i + 1] == UInt8(ascii: "u"), let low = hex4(i + 2), low >= 0xDC00 && low < 0xE000 {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                out.append(contentsOf: Array(String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8))
            default: return nil
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The text of any value as it stands in the document (for passing objects on verbatim).
    public func text(_ span: JSONSpan) -> String {
        span.kind == .string
            ? String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(span.start - 1)..<(span.end + 1)]), as: UTF8.self)
            : String(decoding: raw(span), as: UTF8.self)
    }

    // MARK: - Skipping

    @inline(__always) private func sameBytes(_ span: JSONSpan, _ k: UnsafeBufferPointer<UInt8>) -> Bool {
        guard span.count == k.count else { return false }
        var i = 0
        while i < k.count {
            if bytes[span.start + i] != k[i] { return false }
            i += 1
        }
        return true
    }

    private func hex4(_ i: Int) -> UInt32? {
        var v: UInt32 = 0
        for j in i..<(i + 4) {
            let c = bytes[j]
            let d: UInt8
            switch c {
            case 48...57: d = c - 48
            case 65...70: d = c - 55
            case 97...102: d = c - 87
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    @inline(__always) private func skipWhitespace(_ start: Int) -> Int {
        var i = start
        while i < bytes.count {
            let c = bytes[i]
            if c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09 { break }
            i += 1
        }
        return i
    }

    private func string(at i: Int) -> JSONSpan? {
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        var j = i + 1, escapes = false
        // Eight bytes at a time while none is a quote, a backslash or a control character (base64 payloads are
        // most of every media message). Bit tricks from "Bit Twiddling Hacks" (haszero / hasless): a word can flag
        // a byte that is not there only after a real one, and the byte loop below settles it exactly.
        if let base = bytes.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            while j + 8 <= bytes.count {
                let w = base.loadUnaligned(fromByteOffset: j, as: UInt64.self)
                let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
                let found = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((w &- ones &* 0x20) & ~w)
                if found & highs != 0 { break }
                j += 8
            }
        }
        while j < bytes.count {
            let c = bytes[j]
            if c == UInt8(ascii: "\"") { return JSONSpan(kind: .string, start: i + 1, end: j, hasEscapes: escapes, isTrue: false) }
            if c == UInt8(ascii: "\\") { escapes = true; j += 2; continue }
            if c < 0x20 { return nil }
            j += 1
        }
        return nil
    }

    /// The value starting at `i`; for containers, the span runs from the bracket to one past its match; a string's
    /// span excludes its quotes (continue from `after(_:)`).
    private func value(at i: Int) -> JSONSpan? {
        guard i < bytes.count else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "\""):
            return string(at: i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            return container(at: i)
        case UInt8(ascii: "t"): return literal(at: i, "true", .bool, isTrue: true)
        case UInt8(ascii: "f"): return literal(at: i, "false", .bool, isTrue: false)
        case UInt8(ascii: "n"): return literal(at: i, "null", .null, isTrue: false)
        default:
            var j = i
            while j < bytes.count {
                let c = bytes[j]
                if (c >= 48 && c <= 57) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { j += 1 } else { break }
            }
            return j > i ? JSONSpan(kind: .number, start: i, end: j, hasEscapes: false, isTrue: false) : nil
        }
    }

    private func literal(at i: Int, _ word: StaticString, _ kind: JSONSpan.Kind, isTrue: Bool) -> JSONSpan? {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { return nil }
        for j in 0..<n where bytes[i + j] != word.utf8Start[j] { return nil }
        return JSONSpan(kind: kind, start: i, end: i + n, hasEscapes: false, isTrue: isTrue)
    }

    private func container(at i: Int) -> JSONSpan? {
        let isObject = bytes[i] == UInt8(ascii: "{")
        var j = skipWhitespace(i + 1)
        let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
        if j < bytes.count && bytes[j] == close {
            return JSONSpan(kind: isObject ? .object : .array, start: i, end: j + 1, hasEscapes: false, isTrue: false)
        }
        while j < bytes.count {
            if isObject {
                guard let name = string(at: j) else { return nil }
                j = skipWhitespace(name.end + 1)
                guard j < bytes.count, bytes[j] == UInt8(ascii: ":") else { return nil }
                j = skipWhitespace(j + 1)
            }
            guard let v = value(at: j) else { return nil }
            j = skipWhitespace(after(v))
            guard j < bytes.count else { return nil }
            if bytes[j] == UInt8(ascii: ",") { j = skipWhitespace(j + 1); continue }
            if bytes[j] == close {
                return JSONSpan(kind: isObject ? .object : .array, start: i, end: j + 1, hasEscapes: false, isTrue: false)
            }
            return nil
        }
        return nil
    }

    /// The index just past a value (past the closing quote for strings).
    @inline(__always) func after(_ v: JSONSpan) -> Int { v.kind == .string ? v.end + 1 : v.end }
}
