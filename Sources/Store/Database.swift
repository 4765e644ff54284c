// Store: SQLite in WAL mode on a thread of its own (never on an event loop). Callers `await` jobs; writes that arrive
// while a commit is running are committed together in the next transaction (group commit), so durability costs one
// WAL sync per batch, not per write. Migrations are versioned and applied at open. The only importer of CSQLite3.
import Foundation
import Synchronization
internal import CSQLite3

/// A SQLite failure, with SQLite's message.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var description: String { "SQLite error \(code): \(message)" }
}

/// A value to bind or read.
public enum SQLValue: Sendable, Equatable {
    case int(Int64), text(String), null
}

/// The connection, as jobs on the store thread see it. Not Sendable: use it only inside a job.
public final class StoreConnection {
    fileprivate let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    fileprivate init(db: OpaquePointer) { self.db = db }

    deinit {
        for s in statements.values { sqlite3_finalize(s) }
    }

    private func error(_ code: Int32) -> StoreError { StoreError(code: code, message: String(cString: sqlite3_errmsg(db))) }

    /// Runs SQL with no results (several statements allowed).
    public func execute(_ sql: String) throws(StoreError) {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    /// Runs one statement (prepared once and cached) with `values` bound; returns every row.
    @discardableResult
    public func query(_ sql: String, _ values: [SQLValue] = []) throws(StoreError) -> [[SQLValue]] {
        let statement: OpaquePointer
        if let s = statements[sql] {
            statement = s
        } else {
            var s: OpaquePointer?
            let rc = sqlite3_prepare_v2(db, sql, -1, &s, nil)
            guard rc == SQLITE_OK, let s else { throw error(rc) }
            statements[sql] = s
            statement = s
        }
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (i, v) in values.enumerated() {
            let rc: Int32
            switch v {
            case .int(let n): rc = sqlite3_bind_int64(statement, Int32(i + 1), n)
            case .text(let t): rc = CSQLite3_bind_text_copy(statement, Int32(i + 1), t, Int32(t.utf8.count))
            case .null: rc = sqlite3_bind_null(statement, Int32(i + 1))
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc) }
            var row: [SQLValue] = []
            for c in 0..<sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, c) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(statement, c)))
                case SQLITE_NULL: row.append(.null)
                default: row.append(.text(String(cString: sqlite3_column_text(statement, c))))
                }
            }
            rows.append(row)
        }
        return rows
    }
}

/// The database: one file, one thread.
public final class Database: Sendable {
    private struct Job: @unchecked Sendable {
        let isWrite: Bool
        let run: (StoreConnection) -> Void
        let fail: (StoreError) -> Void
        /// For writes: the outcome, resumed after the commit.
        let result: (any AnyWriteResult)?
    }
    private struct Queue {
        var jobs: [Job] = []
        var closed = false
    }
    private let queue = Mutex<Queue>(Queue())
    private let wake = NSCondition()
    private let connection: UnsafeSendable<StoreConnection>
    /// Transactions committed, and writes in them (group commit's effect).
    public let commits = Atomic<Int>(0)
    public let writes = Atomic<Int>(0)

    /// Opens (creating) `path` in WAL mode with full durability, applies `migrations` not yet applied (each one
    /// SQL script, numbered from 1 by position), and starts the store thread.
    public init(path: String, migrations: [String]) throws(StoreError) {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close(db) }
            throw StoreError(code: rc, message: "\(path): \(message)")
        }
        let c = StoreConnection(db: db)
        // WAL: readers never block the writer; synchronous=FULL: a committed transaction survives a power loss.
        try c.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;")
        try c.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        let applied = Set(try c.query("SELECT version FROM schema_migrations").compactMap { row -> Int64? in
            if case .int(let v) = row.first { return v } else { return nil }
        })
        for (i, sql) in migrations.enumerated() where !applied.contains(Int64(i + 1)) {
            try c.execute("BEGIN")
            do {
                try c.execute(sql)
                try c.query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [.int(Int64(i + 1)), .int(Int64(Date().timeIntervalSince1970))])
                try c.execute("COMMIT")
            } catch {
                try? c.execute("ROLLBACK")
                throw StoreError(code: error.code, message: "migration \(i + 1): \(error.message)")
            }
        }
        connection = UnsafeSendable(c)
        let t = Thread { [self] in self.run() }
        t.name = "patchbay-store"
        t.start()
    }

    /// Runs `body` on the store thread and blocks the calling thread until it is done (start-up only: never from an
    /// event loop or a task).
    public func readBlocking<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws(StoreError) -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let box = UnsafeSendable(Box<T>())
        let job = Job(isWrite: false, run: { c in
            do { box.value.value = try body(c) } catch { box.value.error = error }
            done.signal()
        }, fail: { e in box.value.error = e; done.signal() }, result: nil)
        let accepted = queue.withLock { q -> Bool in
            guard !q.closed else { return false }
            q.jobs.append(job)
            return true
        }
        guard accepted else { throw StoreError(code: SQLITE_MISUSE, message: "the store is closed") }
        wake.lock(); wake.signal(); wake.unlock()
        done.wait()
        if let error = box.value.error { throw error }
        return box.value.value!
    }

    /// Runs `body` on the store thread outside any transaction (reads).
    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws(StoreError) -> T) async throws -> T {
        try await submit(isWrite: false, body)
    }

    /// Runs `body` inside a transaction shared with the other writes queued meanwhile; returns once committed.
    /// A write that throws is rolled back to its own savepoint; the others still commit.
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws(StoreError) -> T) async throws -> T {
        try await submit(isWrite: true, body)
    }

    private func submit<T: Sendable>(isWrite: Bool, _ body: @escaping @Sendable (StoreConnection) throws(StoreError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, any Error>) in
            let box = Box<T>()
            let job = Job(isWrite: isWrite, run: { c in
                do { box.value = try body(c) } catch { box.error = error }
                // Reads resume at once; writes resume after the commit (see run()).
                if !isWrite { box.resume(k) } else { box.pending = k }
            }, fail: { k.resume(throwing: $0) }, result: isWrite ? box : nil)
            let accepted = queue.withLock { q -> Bool in
                guard !q.closed else { return false }
                q.jobs.append(job)
                return true
            }
            guard accepted else { k.resume(throwing: StoreError(code: SQLITE_MISUSE, message: "the store is closed")); return }
            wake.lock(); wake.signal(); wake.unlock()
        }
    }

    /// Queues a write without waiting for it (it joins the next group commit); a failure is only counted. Queued
    /// synchronously, so a read submitted afterwards from anywhere sees it.
    public func enqueueWrite(_ body: @escaping @Sendable (StoreConnection) throws(StoreError) -> Void) {
        let job = Job(isWrite: true, run: { [self] c in
            do { try body(c) } catch { failedWrites.add(1, ordering: .relaxed) }
        }, fail: { [self] _ in failedWrites.add(1, ordering: .relaxed) }, result: nil)
        let accepted = queue.withLock { q -> Bool in
            guard !q.closed else { return false }
            q.jobs.append(job)
            return true
        }
        if !accepted { failedWrites.add(1, ordering: .relaxed) }
        wake.lock(); wake.signal(); wake.unlock()
    }

    /// Writes queued with `enqueueWrite` that failed.
    public let failedWrites = Atomic<Int>(0)

    /// Stops the thread after the queued jobs.
    public func close() {
        queue.withLock { $0.closed = true }
        wake.lock(); wake.signal(); wake.unlock()
    }

    private func run() {
        let c = connection.value
        while true {
            wake.lock()
            var batch: [Job] = []
            var closed = false
            while true {
                (batch, closed) = queue.withLock { q in
                    defer { q.jobs.removeAll(keepingCapacity: true) }
                    return (q.jobs, q.closed)
                }
                if !batch.isEmpty || closed { break }
                wake.wait()
            }
            wake.unlock()
            if batch.isEmpty && closed { break }
            // Every write of the batch in one transaction, then the reads: a read sees every write queued before it.
            let writesInBatch = batch.filter(\.isWrite)
            if !writesInBatch.isEmpty {
                var failure: StoreError?
                do { try c.execute("BEGIN IMMEDIATE") } catch { failure = error }
                if failure == nil {
                    for (i, job) in writesInBatch.enumerated() {
                        do { try c.execute("SAVEPOINT w\(i)") } catch { failure = error; break }
                        job.run(c)
                        if job.result?.failed ?? false { try? c.execute("ROLLBACK TO w\(i)") }
                        try? c.execute("RELEASE w\(i)")
                    }
                }
                if failure == nil {
                    do { try c.execute("COMMIT") } catch { failure = error }
                }
                if let failure {
                    try? c.execute("ROLLBACK")
                    for job in writesInBatch { job.result?.cancel(); job.fail(failure) }
                } else {
                    commits.add(1, ordering: .relaxed)
                    writes.add(writesInBatch.count, ordering: .relaxed)
                    for job in writesInBatch { job.result?.complete() }
                }
            }
            for job in batch where !job.isWrite { job.run(c) }
        }
        _ = sqlite3_close_v2(c.db)
    }
}

/// A write's outcome, held until its transaction commits.
protocol AnyWriteResult: AnyObject {
    var failed: Bool { get }
    func complete()
    func cancel()
}

final class Box<T: Sendable>: AnyWriteResult, @unchecked Sendable {
    var value: T?
    var error: (any Error)?
    var pending: CheckedContinuation<T, any Error>?
    var failed: Bool { error != nil }

    func resume(_ k: CheckedContinuation<T, any Error>) {
        if let error { k.resume(throwing: error) } else { k.resume(returning: value!) }
    }
    func complete() {
        guard let k = pending else { return }
        pending = nil
        resume(k)
    }
    func cancel() { pending = nil }
}

/// A value handed between threads where the code guarantees one thread at a time uses it.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
