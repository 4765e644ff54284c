// Signing: the digests and MACs every provider's signature scheme needs (Twilio HMAC-SHA1, Meta and Standard
// Webhooks HMAC-SHA256, Pusher HMAC-SHA256 and body MD5), over OpenSSL's libcrypto. The only importer of COpenSSL
// outside Transport (which hands OpenSSL to lws). Pure functions: callable from any thread, no state.
internal import COpenSSL

/// A message digest.
public enum DigestAlgorithm: Sendable {
    case sha1, sha256, md5

    fileprivate var evp: OpaquePointer? {
        switch self {
        case .sha1: EVP_sha1()
        case .sha256: EVP_sha256()
        case .md5: EVP_md5()
        }
    }
}

/// Message digests, HMACs and constant-time comparison.
public enum Signing {
    /// HMAC of `message` under `key` (RFC 2104).
    public static func hmac(_ algorithm: DigestAlgorithm, key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        let k = Array(key), m = Array(message)
        var out = [UInt8](repeating: 0, count: Int(COpenSSL_max_md_size()))
        var length: UInt32 = 0
        k.withUnsafeBytes { kb in
            m.withUnsafeBytes { mb in
                out.withUnsafeMutableBytes { ob in
                    // A zero-length key or message still needs a valid pointer.
                    var zero: UInt8 = 0
                    let kp = kb.baseAddress ?? withUnsafePointer(to: &zero) { UnsafeRawPointer($0) }
                    let mp = mb.baseAddress ?? withUnsafePointer(to: &zero) { UnsafeRawPointer($0) }
                    _ = HMAC(algorithm.evp, kp, Int32(kb.count), mp.assumingMemoryBound(to: UInt8.self), mb.count,
                             ob.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
                }
            }
        }
        return Array(out.prefix(Int(length)))
    }

    /// HMAC with a UTF-8 string key and message.
    public static func hmac(_ algorithm: DigestAlgorithm, key: String, message: String) -> [UInt8] {
        hmac(algorithm, key: Array(key.utf8), message: Array(message.utf8))
    }

    /// The digest of `message`.
    public static func digest(_ algorithm: DigestAlgorithm, _ message: some Collection<UInt8>) -> [UInt8] {
        let m = Array(message)
        var out = [UInt8](repeating: 0, count: Int(COpenSSL_max_md_size()))
        var length: UInt32 = 0
        m.withUnsafeBytes { mb in
            out.withUnsafeMutableBytes { ob in
                var zero: UInt8 = 0
                let mp = mb.baseAddress ?? withUnsafePointer(to: &zero) { UnsafeRawPointer($0) }
                _ = EVP_Digest(mp, mb.count, ob.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, algorithm.evp, nil)
            }
        }
        return Array(out.prefix(Int(length)))
    }

    /// Compares two byte strings in time that depends only on their lengths (for signatures and tokens).
    public static func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Constant-time comparison of two strings' UTF-8 bytes.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        constantTimeEqual(Array(a.utf8), Array(b.utf8))
    }

    /// Lower-case hexadecimal.
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `count` cryptographically random bytes.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { b in
            if let p = b.baseAddress { _ = RAND_bytes(p.assumingMemoryBound(to: UInt8.self), Int32(count)) }
        }
        return out
    }
}
