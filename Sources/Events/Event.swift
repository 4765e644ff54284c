// Events: the envelope every plane publishes (PRODUCT.md "Events") and the small interface they publish to.
// The media bridge publishes from its event-loop threads; sinks must return at once (hand work to their own
// thread or queue). Events are per call or per message, never per audio frame.
import Foundation
import WireFormats

/// A JSON value for event payloads, with object keys kept in insertion order.
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])
    /// JSON text taken verbatim from a provider message (already valid JSON).
    case raw(String)

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.double(let x), .double(let y)): x == y
        case (.bool(let x), .bool(let y)): x == y
        case (.null, .null): true
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.raw(let x), .raw(let y)): x == y
        default: false
        }
    }

    /// The member `key` of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    /// Compact JSON text.
    public var json: String {
        var out = ""
        write(into: &out)
        return out
    }

    func write(into out: inout String) {
        switch self {
        case .string(let s): out += JSONString.quote(s)
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? String(format: "%.6g", d) : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .raw(let text): out += text
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += "," }
                out += JSONString.quote(k) + ":"
                v.write(into: &out)
            }
            out += "}"
        }
    }
}

/// One Patchbay event: `{"id", "type", "tenant", "occurred_at", "conversation_id", "call_id"?, "data"}`.
public struct PatchbayEvent: Sendable, Equatable {
    /// Unique id (`evt_` + 24 hex), also the webhook id.
    public var id: String
    /// `call.started`, `call.transcript`, … (docs/events.md).
    public var type: String
    public var tenant: String
    /// Milliseconds since the Unix epoch.
    public var occurredAtMillis: Int64
    public var conversationID: String
    public var callID: String?
    public var data: JSONValue

    public init(id: String = PatchbayEvent.newID(), type: String, tenant: String, occurredAtMillis: Int64,
                conversationID: String, callID: String? = nil, data: JSONValue) {
        self.id = id
        self.type = type
        self.tenant = tenant
        self.occurredAtMillis = occurredAtMillis
        self.conversationID = conversationID
        self.callID = callID
        self.data = data
    }

    /// The channels it is published on (PRODUCT.md): the tenant's, and the call's or the conversation's.
    public var channels: [String] {
        var c = ["private-tenant-\(tenant)"]
        if let callID { c.append("private-call-\(callID)") }
        c.append("private-conversation-\(conversationID)")
        return c
    }

    /// The envelope as JSON (`occurred_at` in RFC 3339 UTC with milliseconds).
    public var json: String {
        var members: [(String, JSONValue)] = [
            ("id", .string(id)), ("type", .string(type)), ("tenant", .string(tenant)),
            ("occurred_at", .string(Self.rfc3339(occurredAtMillis))), ("conversation_id", .string(conversationID)),
        ]
        if let callID { members.append(("call_id", .string(callID))) }
        members.append(("data", data))
        return JSONValue.object(members).json
    }

    /// `evt_` + 24 random hex digits.
    public static func newID() -> String { prefixedID("evt_") }

    /// `prefix` + 24 random hex digits.
    public static func prefixedID(_ prefix: String) -> String {
        var g = SystemRandomNumberGenerator()
        let a = g.next() as UInt64, b = g.next() as UInt32
        return prefix + String(format: "%016llx%08x", a, b)
    }

    /// Milliseconds since the epoch, now (wall clock, for `occurred_at` only).
    public static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    static func rfc3339(_ millis: Int64) -> String {
        var t = time_t(millis / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, Int32(millis % 1000))
    }
}

/// Receives events. `publish` is called on the publisher's thread (often an event loop): return at once.
public protocol EventSink: AnyObject, Sendable {
    func publish(_ event: PatchbayEvent)
}

/// Fans events out to every subscribed sink, in publish order per publisher thread.
public final class EventBus: EventSink, @unchecked Sendable {
    private let lock = NSLock()
    private var sinks: [any EventSink] = []

    public init() {}

    /// Adds a sink (the event plane's publisher, a test recorder, a log).
    public func subscribe(_ sink: any EventSink) {
        lock.lock()
        sinks.append(sink)
        lock.unlock()
    }

    public func publish(_ event: PatchbayEvent) {
        lock.lock()
        let current = sinks
        lock.unlock()
        for s in current { s.publish(event) }
    }
}

/// Keeps every event in memory (tests, `patchbay sim`, diagnostics), with a wait for a condition.
public final class RecordingEventSink: EventSink, @unchecked Sendable {
    private let condition = NSCondition()
    private var stored: [PatchbayEvent] = []

    public init() {}

    public func publish(_ event: PatchbayEvent) {
        condition.lock()
        stored.append(event)
        condition.broadcast()
        condition.unlock()
    }

    /// Everything published so far.
    public var events: [PatchbayEvent] {
        condition.lock()
        defer { condition.unlock() }
        return stored
    }

    /// Waits up to `timeout` seconds for an event matching `predicate`; returns it or nil.
    public func wait(timeout: Double, for predicate: (PatchbayEvent) -> Bool) -> PatchbayEvent? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let e = stored.first(where: predicate) { return e }
            if !condition.wait(until: deadline) { return stored.first(where: predicate) }
        }
    }
}
