// ITU-T G.711 mu-law and A-law, bit-exact with the Sun/CCITT reference code that Python's `audioop`
// (`lin2ulaw`, `ulaw2lin`, `lin2alaw`, `alaw2lin`) also uses: mu-law codes the 14 most significant bits of a
// 16-bit sample, A-law the 13 most significant.
//
// Per frame the work is one table look-up a sample: a 256-entry decode table and a 16K (mu-law) or 8K (A-law)
// entry encode table indexed by the top bits of the sample, built once on first use.

/// Look-up tables for the G.711 codecs: allocated and filled once, then only read (so sharing them across
/// threads is safe), never freed. Unsafe buffers rather than arrays so the per-frame loop is a plain indexed load.
@usableFromInline
enum G711Table {
    @usableFromInline
    static func make<T>(count: Int, _ entry: (Int) -> T) -> UnsafeBufferPointer<T> {
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: count)
        for i in 0..<count { buffer.initializeElement(at: i, to: entry(i)) }
        return UnsafeBufferPointer(buffer)
    }
}

/// G.711 mu-law (ITU-T G.711 §3, the North American and Japanese companding law; Twilio's audio).
public enum MuLaw {
    /// The code for a zero sample (digital silence): 0xFF.
    public static let silence: UInt8 = 0xFF

    /// Encodes one 16-bit sample (its 14 most significant bits, as G.711 and `audioop.lin2ulaw` do).
    @inlinable
    public static func encode(_ sample: Int16) -> UInt8 {
        encodeTable[Int(UInt16(bitPattern: sample) >> 2)]
    }

    /// Decodes one code to a 16-bit sample (as `audioop.ulaw2lin`).
    @inlinable
    public static func decode(_ code: UInt8) -> Int16 {
        decodeTable[Int(code)]
    }

    /// Encodes `min(source.count, destination.count)` samples into `destination`; returns how many.
    @inlinable
    public static func encode(_ source: UnsafeBufferPointer<Int16>, into destination: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let n = min(source.count, destination.count)
        let table = encodeTable
        for i in 0..<n { destination[i] = table[Int(UInt16(bitPattern: source[i]) >> 2)] }
        return n
    }

    /// Decodes `min(source.count, destination.count)` codes into `destination`; returns how many.
    @inlinable
    public static func decode(_ source: UnsafeBufferPointer<UInt8>, into destination: UnsafeMutableBufferPointer<Int16>) -> Int {
        let n = min(source.count, destination.count)
        let table = decodeTable
        for i in 0..<n { destination[i] = table[Int(source[i])] }
        return n
    }

    /// Allocating convenience for tests and the CLI.
    public static func encode(_ samples: [Int16]) -> [UInt8] { samples.map(encode) }
    /// Allocating convenience for tests and the CLI.
    public static func decode(_ codes: [UInt8]) -> [Int16] { codes.map(decode) }

    /// The reference encoder on a 14-bit two's-complement value (`st_14linear2ulaw`): bias 33 (0x84 >> 2),
    /// clip at 8159, segment by the position of the leading one, 4 mantissa bits, all bits inverted.
    @usableFromInline
    static func referenceEncode(linear14 value: Int32) -> UInt8 {
        var magnitude = value
        var mask: UInt8 = 0xFF
        if magnitude < 0 { magnitude = -magnitude; mask = 0x7F }
        if magnitude > 8159 { magnitude = 8159 }
        magnitude += 0x84 >> 2
        // Segment ends of the biased magnitude, as in the reference seg_uend table.
        var segment: Int32 = 0
        while segment < 8 && magnitude > (Int32(0x40) << segment) - 1 { segment += 1 }
        if segment >= 8 { return 0x7F ^ mask }
        let code = UInt8(truncatingIfNeeded: (segment << 4) | ((magnitude >> (segment + 1)) & 0xF))
        return code ^ mask
    }

    /// The reference decoder (`st_ulaw2linear16`).
    @usableFromInline
    static func referenceDecode(_ code: UInt8) -> Int16 {
        let u = ~code
        var t = (Int32(u & 0x0F) << 3) + 0x84
        t <<= Int32((u & 0x70) >> 4)
        return Int16(truncatingIfNeeded: (u & 0x80) != 0 ? 0x84 - t : t - 0x84)
    }

    /// 16K-entry encode table indexed by the sample's top 14 bits: built once, never freed, read-only.
    @usableFromInline
    nonisolated(unsafe) static let encodeTable = G711Table.make(count: 16384) { index in
        // index is the top 14 bits of the sample as an unsigned pattern; sign-extend it back.
        referenceEncode(linear14: Int32(Int16(bitPattern: UInt16(index) << 2)) >> 2)
    }

    /// 256-entry decode table.
    @usableFromInline
    nonisolated(unsafe) static let decodeTable = G711Table.make(count: 256) { referenceDecode(UInt8($0)) }
}

/// G.711 A-law (ITU-T G.711 §2, the European companding law).
public enum ALaw {
    /// The code for a zero sample: 0xD5.
    public static let silence: UInt8 = 0xD5

    /// Encodes one 16-bit sample (its 13 most significant bits, as `audioop.lin2alaw`).
    @inlinable
    public static func encode(_ sample: Int16) -> UInt8 {
        encodeTable[Int(UInt16(bitPattern: sample) >> 3)]
    }

    /// Decodes one code to a 16-bit sample (as `audioop.alaw2lin`).
    @inlinable
    public static func decode(_ code: UInt8) -> Int16 {
        decodeTable[Int(code)]
    }

    /// Encodes `min(source.count, destination.count)` samples into `destination`; returns how many.
    @inlinable
    public static func encode(_ source: UnsafeBufferPointer<Int16>, into destination: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let n = min(source.count, destination.count)
        let table = encodeTable
        for i in 0..<n { destination[i] = table[Int(UInt16(bitPattern: source[i]) >> 3)] }
        return n
    }

    /// Decodes `min(source.count, destination.count)` codes into `destination`; returns how many.
    @inlinable
    public static func decode(_ source: UnsafeBufferPointer<UInt8>, into destination: UnsafeMutableBufferPointer<Int16>) -> Int {
        let n = min(source.count, destination.count)
        let table = decodeTable
        for i in 0..<n { destination[i] = table[Int(source[i])] }
        return n
    }

    /// Allocating convenience for tests and the CLI.
    public static func encode(_ samples: [Int16]) -> [UInt8] { samples.map(encode) }
    /// Allocating convenience for tests and the CLI.
    public static func decode(_ codes: [UInt8]) -> [Int16] { codes.map(decode) }

    /// The reference encoder on a 13-bit two's-complement value (`st_linear2alaw`): segment by the leading
    /// one (segment ends 0x1F, 0x3F ... 0xFFF), 4 mantissa bits, even bits inverted (XOR 0x55), sign set for >= 0.
    @usableFromInline
    static func referenceEncode(linear13 value: Int32) -> UInt8 {
        var magnitude = value
        let mask: UInt8
        if magnitude >= 0 { mask = 0xD5 } else { mask = 0x55; magnitude = -magnitude - 1 }
        var segment: Int32 = 0
        while segment < 8 && magnitude > (Int32(0x20) << segment) - 1 { segment += 1 }
        if segment >= 8 { return 0x7F ^ mask }
        var code = UInt8(truncatingIfNeeded: segment << 4)
        code |= UInt8(truncatingIfNeeded: (segment < 2 ? magnitude >> 1 : magnitude >> segment) & 0xF)
        return code ^ mask
    }

    /// The reference decoder (`st_alaw2linear16`).
    @usableFromInline
    static func referenceDecode(_ code: UInt8) -> Int16 {
        let a = code ^ 0x55
        var t = Int32(a & 0x0F) << 4
        let segment = Int32((a & 0x70) >> 4)
        switch segment {
        case 0: t += 8
        case 1: t += 0x108
        default: t += 0x108; t <<= segment - 1
        }
        return Int16(truncatingIfNeeded: (a & 0x80) != 0 ? t : -t)
    }

    /// 8K-entry encode table indexed by the sample's top 13 bits: built once, never freed, read-only.
    @usableFromInline
    nonisolated(unsafe) static let encodeTable = G711Table.make(count: 8192) { index in
        referenceEncode(linear13: Int32(Int16(bitPattern: UInt16(index) << 3)) >> 3)
    }

    /// 256-entry decode table.
    @usableFromInline
    nonisolated(unsafe) static let decodeTable = G711Table.make(count: 256) { referenceDecode(UInt8($0)) }
}
