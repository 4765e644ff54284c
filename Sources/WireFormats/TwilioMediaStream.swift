// Twilio Media Streams messages (shared/protocols/twilio-media-streams.md §4-§5): the inbound scanner used per
// frame, the `start` details read once per call, and the writers for what we send (`media`, `mark`, `clear`).

/// The `event` of a message Twilio sends.
public enum TwilioEvent: Sendable, Equatable {
    case connected, start, media, dtmf, mark, stop
    /// An event this code does not know (ignored, per §4 "ignore unknown `event` values").
    case unknown
}

/// One message from Twilio, scanned in place. Spans point into the bytes given to `parse`, valid as long as they.
/// Scalars are read leniently as strings or numbers (§4: "Parse leniently").
public struct TwilioInboundMessage {
    /// The event.
    public var event: TwilioEvent = .unknown
    /// `sequenceNumber` (absent on `connected`: -1).
    public var sequenceNumber: Int64 = -1
    /// Top-level `streamSid` (a string span), or nil.
    public var streamSID: JSONSpan?
    /// `media.timestamp` (ms since the stream started).
    public var mediaTimestampMillis: Int64 = -1
    /// `media.chunk` (per-track counter from 1).
    public var mediaChunk: Int64 = -1
    /// `media.payload` (base64 string span).
    public var mediaPayload: JSONSpan?
    /// `media.track` is `inbound` (or absent).
    public var mediaTrackIsInbound = true
    /// `mark.name` (string span).
    public var markName: JSONSpan?
    /// `dtmf.digit` (string span).
    public var dtmfDigit: JSONSpan?
    /// The root object (for reading `start` details).
    public var root = JSONSpan(kind: .object, start: 0, end: 0, hasEscapes: false, isTrue: false)

    public init() {}

    /// Scans `scanner`'s document. False when it is not one JSON object with a string `event`. One pass over the
    /// members, one over the event's object: the payload is walked twice, not once per field looked up.
    public mutating func parse(_ scanner: JSONScanner) -> Bool {
        self = TwilioInboundMessage()
        guard let root = scanner.rootObject() else { return false }
        self.root = root
        var eventSpan: JSONSpan?, media: JSONSpan?, mark: JSONSpan?, dtmf: JSONSpan?
        scanner.forEachMember(of: root) { name, value in
            if scanner.equals(name, "event") { eventSpan = value }
            else if scanner.equals(name, "sequenceNumber") { sequenceNumber = scanner.integer(value) ?? -1 }
            else if scanner.equals(name, "streamSid") { if value.kind == .string { streamSID = value } }
            else if scanner.equals(name, "media") { media = value }
            else if scanner.equals(name, "mark") { mark = value }
            else if scanner.equals(name, "dtmf") { dtmf = value }
            return true
        }
        guard let ev = eventSpan, ev.kind == .string else { return false }
        if scanner.equals(ev, "media") { event = .media }
        else if scanner.equals(ev, "mark") { event = .mark }
        else if scanner.equals(ev, "start") { event = .start }
        else if scanner.equals(ev, "connected") { event = .connected }
        else if scanner.equals(ev, "dtmf") { event = .dtmf }
        else if scanner.equals(ev, "stop") { event = .stop }
        else { event = .unknown }
        switch event {
        case .media:
            guard let body = media else { return true }
            scanner.forEachMember(of: body) { name, value in
                if scanner.equals(name, "payload") { if value.kind == .string { mediaPayload = value } }
                else if scanner.equals(name, "timestamp") { mediaTimestampMillis = scanner.integer(value) ?? -1 }
                else if scanner.equals(name, "chunk") { mediaChunk = scanner.integer(value) ?? -1 }
                else if scanner.equals(name, "track") { mediaTrackIsInbound = scanner.equals(value, "inbound") }
                return true
            }
        case .mark:
            if let body = mark, let n = scanner.member("name", of: body), n.kind == .string { markName = n }
        case .dtmf:
            if let body = dtmf, let n = scanner.member("digit", of: body), n.kind == .string { dtmfDigit = n }
        default: break
        }
        return true
    }
}

/// The `start` message's details (§4.2), read once per call (allocates).
public struct TwilioStart: Sendable, Equatable {
    public var streamSID: String
    public var accountSID: String
    public var callSID: String
    public var tracks: [String]
    public var customParameters: [String: String]
    public var encoding: String
    public var sampleRate: Int
    public var channels: Int

    public init(streamSID: String, accountSID: String, callSID: String, tracks: [String] = ["inbound"],
                customParameters: [String: String] = [:], encoding: String = "audio/x-mulaw", sampleRate: Int = 8000, channels: Int = 1) {
        self.streamSID = streamSID
        self.accountSID = accountSID
        self.callSID = callSID
        self.tracks = tracks
        self.customParameters = customParameters
        self.encoding = encoding
        self.sampleRate = sampleRate
        self.channels = channels
    }

    /// Why a `start` is refused.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Reads `start` from a scanned message. `streamSid` may be top-level or inside `start`; ids must be plain
    /// `[A-Za-z0-9_-]` so they can be written into our messages without escaping.
    public init(_ message: TwilioInboundMessage, _ scanner: JSONScanner) throws(Invalid) {
        guard let s = scanner.member("start", of: message.root), s.kind == .object else { throw Invalid(description: "start without a start object") }
        func text(_ key: StaticString, in object: JSONSpan) -> String? {
            scanner.member(key, of: object).flatMap { scanner.string($0) }
        }
        guard let sid = text("streamSid", in: s) ?? message.streamSID.flatMap({ scanner.string($0) }), Self.isPlainID(sid) else {
            throw Invalid(description: "start without a valid streamSid")
        }
        guard let call = text("callSid", in: s), Self.isPlainID(call) else { throw Invalid(description: "start without a valid callSid") }
        streamSID = sid
        callSID = call
        accountSID = text("accountSid", in: s) ?? ""
        var tracks: [String] = []
        if let t = scanner.member("tracks", of: s) {
            scanner.forEachElement(of: t) { e in
                if let v = scanner.string(e) { tracks.append(v) }
                return true
            }
        }
        self.tracks = tracks
        var params: [String: String] = [:]
        if let p = scanner.member("customParameters", of: s) {
            scanner.forEachMember(of: p) { k, v in
                if let key = scanner.string(k) { params[key] = scanner.string(v) ?? scanner.text(v) }
                return true
            }
        }
        customParameters = params
        guard let f = scanner.member("mediaFormat", of: s), f.kind == .object else { throw Invalid(description: "start without mediaFormat") }
        encoding = text("encoding", in: f) ?? ""
        sampleRate = Int(scanner.member("sampleRate", of: f).flatMap { scanner.integer($0) } ?? 0)
        channels = Int(scanner.member("channels", of: f).flatMap { scanner.integer($0) } ?? 0)
    }

    /// `[A-Za-z0-9_-]{1,64}`.
    public static func isPlainID(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 45
        }
    }

    /// This start as Twilio would send it (sequence number 1): for simulators and tests.
    public func json() -> String {
        let params = customParameters.keys.sorted().map { "\(JSONString.quote($0)):\(JSONString.quote(customParameters[$0]!))" }.joined(separator: ",")
        let trackList = tracks.map { JSONString.quote($0) }.joined(separator: ",")
        return "{\"event\":\"start\",\"sequenceNumber\":\"1\",\"start\":{\"accountSid\":\(JSONString.quote(accountSID)),\"streamSid\":\(JSONString.quote(streamSID)),\"callSid\":\(JSONString.quote(callSID)),\"tracks\":[\(trackList)],\"customParameters\":{\(params)},\"mediaFormat\":{\"encoding\":\(JSONString.quote(encoding)),\"sampleRate\":\(sampleRate),\"channels\":\(channels)}},\"streamSid\":\(JSONString.quote(streamSID))}"
    }
}

/// Writes JSON messages into one reusable buffer; each call returns a view valid until the next call. The
/// buffer is sized at init for the largest payload; nothing allocates afterwards. Loop-owned.
public final class JSONMessageBuffer {
    private let storage: UnsafeMutableRawBufferPointer
    private var length = 0

    /// A buffer for messages of up to `capacity` bytes.
    public init(capacity: Int) {
        storage = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    /// The bytes written since `reset`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<length]) }

    public func reset() { length = 0 }

    public func append(_ s: StaticString) {
        s.withUTF8Buffer { b in append(UnsafeRawBufferPointer(b)) }
    }

    public func append(_ b: UnsafeRawBufferPointer) {
        precondition(length + b.count <= storage.count, "message buffer too small")
        if let p = b.baseAddress, b.count > 0 { (storage.baseAddress! + length).copyMemory(from: p, byteCount: b.count) }
        length += b.count
    }

    public func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a non-negative integer in decimal.
    public func append(decimal value: Int64) {
        var v = value < 0 ? 0 : value
        var digits = 1
        var t = v
        while t >= 10 { t /= 10; digits += 1 }
        precondition(length + digits <= storage.count, "message buffer too small")
        var i = length + digits - 1
        repeat {
            storage[i] = UInt8(48 + v % 10)
            v /= 10
            i -= 1
        } while v > 0
        length += digits
    }

    /// Appends `payload` base64-encoded.
    public func appendBase64(_ payload: UnsafeRawBufferPointer) {
        let n = Base64.encode(payload, into: UnsafeMutableRawBufferPointer(rebasing: storage[length...]))
        length += n
    }
}

/// What we send to Twilio (§5): exactly `event`, `streamSid` and the event's object, nothing more.
public final class TwilioOutboundWriter {
    private let buffer: JSONMessageBuffer
    private let streamSID: String
    /// Mark names are `<prefix><number>` (e.g. `pb-17`).
    public let markPrefix: String

    /// A writer for one stream; `maxPayloadBytes` bounds one `media` message's audio.
    public init(streamSID: String, maxPayloadBytes: Int = 1600, markPrefix: String = "pb-") {
        precondition(TwilioStart.isPlainID(streamSID))
        self.streamSID = streamSID
        self.markPrefix = markPrefix
        buffer = JSONMessageBuffer(capacity: 128 + streamSID.utf8.count + markPrefix.utf8.count + Base64.encodedLength(maxPayloadBytes))
    }

    /// `{"event":"media","streamSid":…,"media":{"payload":…}}`.
    public func media(_ payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        buffer.reset()
        buffer.append("{\"event\":\"media\",\"streamSid\":\"")
        buffer.append(streamSID)
        buffer.append("\",\"media\":{\"payload\":\"")
        buffer.appendBase64(payload)
        buffer.append("\"}}")
        return buffer.bytes
    }

    /// `{"event":"mark","streamSid":…,"mark":{"name":"<prefix><number>"}}`.
    public func mark(number: Int64) -> UnsafeRawBufferPointer {
        buffer.reset()
        buffer.append("{\"event\":\"mark\",\"streamSid\":\"")
        buffer.append(streamSID)
        buffer.append("\",\"mark\":{\"name\":\"")
        buffer.append(markPrefix)
        buffer.append(decimal: number)
        buffer.append("\"}}")
        return buffer.bytes
    }

    /// `{"event":"clear","streamSid":…}`.
    public func clear() -> UnsafeRawBufferPointer {
        buffer.reset()
        buffer.append("{\"event\":\"clear\",\"streamSid\":\"")
        buffer.append(streamSID)
        buffer.append("\"}")
        return buffer.bytes
    }

    /// The number in a mark name we wrote (`pb-17` -> 17), or nil for a name that is not ours.
    public func markNumber(_ scanner: JSONScanner, _ name: JSONSpan) -> Int64? {
        guard name.kind == .string, !name.hasEscapes else { return nil }
        let raw = scanner.raw(name)
        let prefix = markPrefix.utf8
        guard raw.count > prefix.count, raw.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        let digits = JSONSpan(kind: .number, start: name.start + prefix.count, end: name.end, hasEscapes: false, isTrue: false)
        guard let n = scanner.integer(digits), n >= 0 else { return nil }
        return n
    }
}
