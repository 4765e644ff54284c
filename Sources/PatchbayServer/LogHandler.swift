// Log output: human lines on a terminal, JSON lines for log shippers (PATCHBAY_LOG_FORMAT=json).
// Any thread may log; a record is formatted on the caller's thread and written with one write(2), so lines
// from different threads never interleave.
import Foundation
import Logging
import Transport
import WireFormats
#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler writing one line per record to a file descriptor (standard error by default).
public struct PatchbayLogHandler: LogHandler {
    /// Line format.
    public let format: LogFormat
    /// The logger's label (`patchbay.transport`, ...).
    public let label: String
    /// Where lines go.
    public let fileDescriptor: Int32
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler for `label` at `level`.
    public init(label: String, format: LogFormat, level: Logger.Level, fileDescriptor: Int32 = 2) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.fileDescriptor = fileDescriptor
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let m = event.metadata { all.merge(m) { _, new in new } }
        let line = format == .json
            ? Self.jsonLine(level: event.level, message: event.message.description, label: label, metadata: all,
                            source: event.source, file: event.file, line: event.line)
            : Self.humanLine(level: event.level, message: event.message.description, label: label, metadata: all)
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    /// `2026-11-23T03:12:04.123Z info patchbay.transport: listening port=8080`
    static func humanLine(level: Logger.Level, message: String, label: String, metadata: Logger.Metadata) -> String {
        var s = "\(timestamp()) \(level.rawValue) \(label): \(message)"
        for key in metadata.keys.sorted() { s += " \(key)=\(metadata[key]!)" }
        return s
    }

    /// `{"ts":"...","level":"info","logger":"patchbay.transport","msg":"listening","port":"8080"}`
    static func jsonLine(level: Logger.Level, message: String, label: String, metadata: Logger.Metadata,
                         source: String, file: String, line: UInt) -> String {
        var s = "{\"ts\":\"\(timestamp())\",\"level\":\"\(level.rawValue)\",\"logger\":\(JSONString.quote(label)),\"msg\":\(JSONString.quote(message))"
        for key in metadata.keys.sorted() where !["ts", "level", "logger", "msg"].contains(key) {
            s += ",\(JSONString.quote(key)):\(json(metadata[key]!))"
        }
        if level >= .warning { s += ",\"source\":\(JSONString.quote("\(source)/\((file as NSString).lastPathComponent):\(line)"))" }
        return s + "}"
    }

    static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return JSONString.quote(s)
        case .stringConvertible(let c): return JSONString.quote(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { "\(JSONString.quote($0)):\(json(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// RFC 3339 UTC with milliseconds, without Foundation's date formatters (not cheap, not thread-friendly).
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}

/// Logging bootstrap for the executable (once per process).
public enum PatchbayLogging {
    /// Routes every `Logger` to `PatchbayLogHandler` with the configured level and format.
    public static func bootstrap(_ settings: LogSettings) {
        let level = Logger.Level(rawValue: settings.level) ?? .info
        LoggingSystem.bootstrap { label in PatchbayLogHandler(label: label, format: settings.format, level: level) }
    }
}
