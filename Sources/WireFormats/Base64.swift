// WireFormats: the providers' messages as bytes. Pure: no C, no I/O, no threads, no clock. Hot-path parsers and
// writers work on caller-owned buffers and allocate nothing (STYLE.md §4: "base64 into a preallocated buffer").

/// Standard base64 (RFC 4648 §4: `+`, `/`, `=` padding), encoding and decoding into caller-owned buffers.
public enum Base64 {
    // Read-only after initialisation: safe to share.
    nonisolated(unsafe) private static let alphabet: UnsafeBufferPointer<UInt8> = {
        let chars = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let p = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 64)
        _ = p.initialize(from: chars)
        return UnsafeBufferPointer(p)
    }()

    /// 0...63 for alphabet bytes, 0xFE for `=`, 0xFF otherwise.
    nonisolated(unsafe) private static let decoding: UnsafeBufferPointer<UInt8> = {
        let p = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 256)
        p.initialize(repeating: 0xFF)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { p[Int(c)] = UInt8(i) }
        p[Int(UInt8(ascii: "="))] = 0xFE
        return UnsafeBufferPointer(p)
    }()

    /// Characters needed to encode `count` bytes.
    @inlinable public static func encodedLength(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Largest decoded size of `count` characters.
    @inlinable public static func maxDecodedLength(_ count: Int) -> Int { (count + 3) / 4 * 3 }

    /// Encodes `source` into `destination` (at least `encodedLength(source.count)` bytes); returns the bytes written.
    public static func encode(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        let n = source.count
        precondition(destination.count >= encodedLength(n), "base64 destination too small")
        let a = alphabet
        var i = 0, o = 0
        while i + 3 <= n {
            let v = UInt32(source[i]) << 16 | UInt32(source[i + 1]) << 8 | UInt32(source[i + 2])
            destination[o] = a[Int(v >> 18)]
            destination[o + 1] = a[Int(v >> 12 & 63)]
            destination[o + 2] = a[Int(v >> 6 & 63)]
            destination[o + 3] = a[Int(v & 63)]
            i += 3
            o += 4
        }
        let rest = n - i
        if rest > 0 {
            let v = UInt32(source[i]) << 16 | (rest == 2 ? UInt32(source[i + 1]) << 8 : 0)
            destination[o] = a[Int(v >> 18)]
            destination[o + 1] = a[Int(v >> 12 & 63)]
            destination[o + 2] = rest == 2 ? a[Int(v >> 6 & 63)] : UInt8(ascii: "=")
            destination[o + 3] = UInt8(ascii: "=")
            o += 4
        }
        return o
    }

    /// Decodes `source` into `destination`; returns the bytes written, or nil for a character outside the alphabet,
    /// misplaced padding, a truncated group, or a destination too small. A backslash before `/` is skipped, since
    /// JSON may escape the solidus inside a string (RFC 8259 §7); the caller passes the raw string contents.
    public static func decode(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        let table = decoding
        var quad: UInt32 = 0, have = 0, o = 0, padding = 0
        for c in source {
            if c == UInt8(ascii: "\\") { continue }
            let d = table[Int(c)]
            if d == 0xFF { return nil }
            if d == 0xFE { padding += 1; continue }
            if padding > 0 { return nil } // data after padding
            quad = quad << 6 | UInt32(d)
            have += 1
            if have == 4 {
                guard o + 3 <= destination.count else { return nil }
                destination[o] = UInt8(truncatingIfNeeded: quad >> 16)
                destination[o + 1] = UInt8(truncatingIfNeeded: quad >> 8)
                destination[o + 2] = UInt8(truncatingIfNeeded: quad)
                o += 3
                have = 0
                quad = 0
            }
        }
        switch have {
        case 0: return padding == 0 ? o : nil
        case 2:
            guard padding == 0 || padding == 2, o + 1 <= destination.count else { return nil }
            destination[o] = UInt8(truncatingIfNeeded: quad >> 4)
            return o + 1
        case 3:
            guard padding == 0 || padding == 1, o + 2 <= destination.count else { return nil }
            destination[o] = UInt8(truncatingIfNeeded: quad >> 10)
            destination[o + 1] = UInt8(truncatingIfNeeded: quad >> 2)
            return o + 2
        default: return nil
        }
    }

    /// Allocating convenience (tests, CLI, control messages).
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: encodedLength(bytes.count))
        let n = bytes.withUnsafeBytes { s in out.withUnsafeMutableBytes { d in encode(s, into: d) } }
        return String(decoding: out.prefix(n), as: UTF8.self)
    }

    /// Allocating convenience; nil when `text` is not valid base64.
    public static func decode(_ text: String) -> [UInt8]? {
        let src = Array(text.utf8)
        var out = [UInt8](repeating: 0, count: maxDecodedLength(src.count))
        guard let n = src.withUnsafeBytes({ s in out.withUnsafeMutableBytes { d in decode(s, into: d) } }) else { return nil }
        return Array(out.prefix(n))
    }
}
