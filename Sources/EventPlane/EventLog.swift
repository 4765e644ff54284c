// The durable event log: every event published on a channel gets the channel's next sequence number and is kept
// for the retention time, so a client that reconnects can ask for what it missed (a `patchbay_after` field in
// `pusher:subscribe`, which stock clients never send and ignore in replies, or `GET /api/v1/events`), and learns
// when the gap is older than what is kept. Sequence numbers are assigned in memory under a lock (so fan-out and
// storage agree) and rows go to the Store, committed in groups off the event loops.
import Foundation
import Store
import Synchronization

/// Schema of the event log (Store migrations are numbered by position: append, never edit).
public enum EventLogSchema {
    public static let migrations = [
        """
        CREATE TABLE events (
            app TEXT NOT NULL, channel TEXT NOT NULL, seq INTEGER NOT NULL,
            event TEXT NOT NULL, data TEXT NOT NULL, created_ms INTEGER NOT NULL,
            PRIMARY KEY (app, channel, seq)
        ) WITHOUT ROWID;
        CREATE INDEX events_created ON events (created_ms);
        """,
    ]
}

/// A stored event.
public struct LoggedEvent: Sendable, Equatable {
    public var seq: Int64
    public var event: String
    public var data: String
    public var createdMillis: Int64
}

/// The log over a Store database.
public final class EventLog: Sendable {
    let database: Database
    let retentionMillis: Int64
    private let sequences = Mutex<[String: Int64]>([:])

    /// Opens the log: loads every channel's last sequence number (at start-up, blocking).
    public init(database: Database, retentionHours: Double) throws {
        self.database = database
        retentionMillis = Int64(retentionHours * 3_600_000)
        let rows = try database.readBlocking { c throws(StoreError) in
            try c.query("SELECT app, channel, MAX(seq) FROM events GROUP BY app, channel")
        }
        var last: [String: Int64] = [:]
        for row in rows {
            if case .text(let app) = row[0], case .text(let channel) = row[1], case .int(let seq) = row[2] { last[app + "\u{0}" + channel] = seq }
        }
        sequences.withLock { $0 = last }
    }

    /// The next sequence number of a channel.
    func nextSequence(app: String, channel: String) -> Int64 {
        sequences.withLock { s in
            let k = app + "\u{0}" + channel
            let n = (s[k] ?? 0) + 1
            s[k] = n
            return n
        }
    }

    static let insert = "INSERT INTO events (app, channel, seq, event, data, created_ms) VALUES (?, ?, ?, ?, ?, ?)"

    /// One event on one channel, numbered, as stored.
    struct Row: Sendable {
        var app: String
        var channel: String
        var seq: Int64
        var event: String
        var data: String
        var createdMillis: Int64
    }

    /// Stores an event (returns once committed).
    func append(app: String, channel: String, seq: Int64, event: String, data: String, nowMillis: Int64) async throws {
        try await append([Row(app: app, channel: channel, seq: seq, event: event, data: data, createdMillis: nowMillis)])
    }

    /// Stores rows together (all or none; returns once committed).
    func append(_ rows: [Row]) async throws {
        guard !rows.isEmpty else { return }
        try await database.write { c throws(StoreError) in
            for r in rows {
                try c.query(Self.insert, [.text(r.app), .text(r.channel), .int(r.seq), .text(r.event), .text(r.data), .int(r.createdMillis)])
            }
        }
    }

    /// Queues an event for the next group commit without waiting (Patchbay's own events, published from loops).
    func enqueue(app: String, channel: String, seq: Int64, event: String, data: String, nowMillis: Int64) {
        database.enqueueWrite { c throws(StoreError) in
            try c.query(Self.insert, [.text(app), .text(channel), .int(seq), .text(event), .text(data), .int(nowMillis)])
        }
    }

    /// Events after `after` (oldest first, at most `limit`), and the oldest sequence still kept (nil: none kept).
    public func events(app: String, channel: String, after: Int64, limit: Int) async throws -> (events: [LoggedEvent], oldest: Int64?) {
        try await database.read { c throws(StoreError) in
            let rows = try c.query("SELECT seq, event, data, created_ms FROM events WHERE app = ? AND channel = ? AND seq > ? ORDER BY seq LIMIT ?",
                                   [.text(app), .text(channel), .int(after), .int(Int64(limit))])
            let oldest = try c.query("SELECT MIN(seq) FROM events WHERE app = ? AND channel = ?", [.text(app), .text(channel)])
            let events = rows.compactMap { r -> LoggedEvent? in
                guard case .int(let seq) = r[0], case .text(let e) = r[1], case .text(let d) = r[2], case .int(let t) = r[3] else { return nil }
                return LoggedEvent(seq: seq, event: e, data: d, createdMillis: t)
            }
            if case .int(let o)? = oldest.first?.first { return (events, o) }
            return (events, nil)
        }
    }

    /// Deletes what is older than the retention time; returns how many rows went.
    @discardableResult
    public func purge(nowMillis: Int64) async throws -> Int {
        let cutoff = nowMillis - retentionMillis
        return try await database.write { c throws(StoreError) in
            let before = try c.query("SELECT COUNT(*) FROM events WHERE created_ms < ?", [.int(cutoff)])
            try c.query("DELETE FROM events WHERE created_ms < ?", [.int(cutoff)])
            if case .int(let n)? = before.first?.first { return Int(n) }
            return 0
        }
    }
}

extension EventLog {
    /// Numbers and stores one event, returning its sequence number (tests and tools).
    @discardableResult
    public func appendForTest(app: String, channel: String, event: String, data: String, nowMillis: Int64) async throws -> Int64 {
        let seq = nextSequence(app: app, channel: channel)
        try await append(app: app, channel: channel, seq: seq, event: event, data: data, nowMillis: nowMillis)
        return seq
    }
}
