// Metrics: swift-metrics in code, swift-prometheus as the backend (STYLE.md §7).
// Why swift-prometheus rather than a registry of our own: it is the backend of the swift-metrics API every Swift
// server library already emits to, it renders the text exposition format into a reused buffer, and it costs one
// small package (plus swift-atomics). Counters are atomic and safe anywhere; histograms take a lock, so per-frame
// figures are kept in per-call stats structs and flushed, never recorded per frame.
import Foundation
import Metrics
import Prometheus
import Synchronization

/// The process's Prometheus registry and the metrics the composition root itself records.
public final class PatchbayMetrics: Sendable {
    /// The registry `/metrics` renders. Bootstrap swift-metrics onto it once per process with `bootstrapGlobal()`.
    public let registry: PrometheusCollectorRegistry
    /// When this process started (for `process_start_time_seconds`).
    public let startTime: Date
    private let httpCounters = Mutex<[String: Prometheus.Counter]>([:])
    private let scrapeBuffer = Mutex<[UInt8]>([])
    private let startGauge: Prometheus.Gauge
    private let residentGauge: Prometheus.Gauge
    private let fdGauge: Prometheus.Gauge
    private static var requestsDescriptor: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "patchbay", subsystem: "http", metricName: "requests", unitName: "total",
        helpText: "HTTP requests answered, by route template, method and status class.") }

    /// A fresh registry (tests make their own; the executable makes one and bootstraps swift-metrics onto it).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.startTime = Date()
        startGauge = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "process_start_time", unitName: "seconds", helpText: "Start time of the process since the Unix epoch in seconds."))
        residentGauge = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "process_resident_memory", unitName: "bytes", helpText: "Resident memory size in bytes."))
        fdGauge = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "process_open", unitName: "fds", helpText: "Number of open file descriptors."))
        startGauge.set(startTime.timeIntervalSince1970)
    }

    /// Makes every swift-metrics `Counter(label:)` etc. in the process land in this registry. Once per process.
    public func bootstrapGlobal() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// Counts one answered HTTP request. Labels are bounded: the route template (never the raw path), the method
    /// and the status class.
    public func countRequest(route: String, method: String, status: Int) {
        let statusClass = "\(status / 100)xx"
        let key = "\(route)|\(method)|\(statusClass)"
        let counter = httpCounters.withLock { counters -> Prometheus.Counter in
            if let c = counters[key] { return c }
            let c = registry.makeCounter(descriptor: Self.requestsDescriptor,
                                         labels: [("route", route), ("method", method), ("status", statusClass)])
            counters[key] = c
            return c
        }
        counter.increment()
    }

    /// Renders the exposition text (Prometheus text format 0.0.4) with the process gauges refreshed first.
    public func render(extra: [(name: String, help: String, value: Double)] = []) -> [UInt8] {
        refreshProcessGauges()
        return scrapeBuffer.withLock { buffer in
            buffer.removeAll(keepingCapacity: true)
            registry.emit(into: &buffer)
            for e in extra {
                let type = e.name.hasSuffix("_total") ? "counter" : "gauge"
                buffer.append(contentsOf: Array("# HELP \(e.name) \(e.help)\n# TYPE \(e.name) \(type)\n\(e.name) \(formatValue(e.value))\n".utf8))
            }
            return buffer
        }
    }

    private func formatValue(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    private func refreshProcessGauges() {
        if let stat = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = stat.split(separator: " ")
            if fields.count > 1, let pages = Double(fields[1]) {
                residentGauge.set(pages * Double(sysconf(Int32(_SC_PAGESIZE))))
            }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            fdGauge.set(Double(fds.count))
        }
    }
}
