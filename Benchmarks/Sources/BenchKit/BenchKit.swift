import Foundation
// BenchKit: the small harness every benchmark executable uses: a monotonic clock, repeated runs with medians,
// percentiles over latency samples, and heap allocations counted per iteration (CAllocCounter).
import CAllocCounter
#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on the monotonic clock.
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Heap allocation calls made by this process so far.
@inline(__always)
public func allocationCount() -> UInt64 { CAllocCounter_allocations() }

/// One micro-benchmark's result: the median over runs of nanoseconds per iteration, and allocations per iteration.
public struct MicroResult: Sendable {
    public var name: String
    public var nanosPerIteration: Double
    public var allocationsPerIteration: Double
    public var runs: [Double]
}

/// Runs `body` `iterations` times per run, `runs` runs (after one warm-up run), and reports the median
/// nanoseconds per iteration and the allocations per iteration of the median run.
public func measure(_ name: String, iterations: Int, runs: Int = 7, _ body: () -> Void) -> MicroResult {
    for _ in 0..<max(1, iterations / 10) { body() } // warm-up
    var perIteration: [Double] = []
    var allocs: [Double] = []
    for _ in 0..<runs {
        let a0 = allocationCount()
        let t0 = monotonicNanos()
        for _ in 0..<iterations { body() }
        let t1 = monotonicNanos()
        let a1 = allocationCount()
        perIteration.append(Double(t1 - t0) / Double(iterations))
        allocs.append(Double(a1 - a0) / Double(iterations))
    }
    let order = perIteration.indices.sorted { perIteration[$0] < perIteration[$1] }
    let mid = order[order.count / 2]
    return MicroResult(name: name, nanosPerIteration: perIteration[mid], allocationsPerIteration: allocs[mid], runs: perIteration)
}

/// The value at quantile `q` (0...1) of `sorted` (nearest rank).
public func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

/// Prints results as a Markdown table (benchmark, ns per iteration, allocations per iteration).
public func printTable(_ results: [MicroResult], title: String) {
    print("### \(title)\n")
    print("| benchmark | ns / iteration (median of runs) | allocations / iteration |")
    print("|---|---:|---:|")
    for r in results {
        print("| \(r.name) | \(String(format2(r.nanosPerIteration))) | \(String(format2(r.allocationsPerIteration))) |")
    }
    print("")
}

/// Two decimals, no Foundation.
public func format2(_ v: Double) -> String {
    guard v.isFinite else { return "\(v)" }
    let scaled = (v * 100).rounded()
    let whole = Int(scaled / 100)
    let frac = Int(abs(scaled).truncatingRemainder(dividingBy: 100))
    return "\(whole).\(frac < 10 ? "0" : "")\(frac)"
}

/// CPU time (user + system) a process has used, in clock ticks (`/proc/PID/stat` fields 14 and 15).
public func cpuTicks(_ pid: Int32) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return 0 }
    let fields = s[s.index(after: close)...].split(separator: " ")
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    return (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
}

/// A process's resident memory (`VmRSS` of `/proc/PID/status`), KiB.
public func rssKiB(_ pid: Int32) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}
