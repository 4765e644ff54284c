// AudioCore micro-benchmarks: nanoseconds and heap allocations per 20 ms frame (release build, BenchKit).
//   cd Benchmarks && swift build -c release --product audiocore-bench && .build/release/audiocore-bench
import AudioCore
import BenchKit

let samples = 160 // 20 ms at 8 kHz
var pcm = (0..<samples).map { Int16(truncatingIfNeeded: $0 &* 397 &- 30000) }
var codes = [UInt8](repeating: 0, count: samples)
var decoded = [Int16](repeating: 0, count: samples)
var sink = 0

let results = [
    measure("mu-law encode, 160-sample frame", iterations: 200_000) {
        pcm.withUnsafeBufferPointer { src in codes.withUnsafeMutableBufferPointer { dst in sink &+= MuLaw.encode(src, into: dst) } }
    },
    measure("mu-law decode, 160-sample frame", iterations: 200_000) {
        codes.withUnsafeBufferPointer { src in decoded.withUnsafeMutableBufferPointer { dst in sink &+= MuLaw.decode(src, into: dst) } }
    },
    measure("A-law encode, 160-sample frame", iterations: 200_000) {
        pcm.withUnsafeBufferPointer { src in codes.withUnsafeMutableBufferPointer { dst in sink &+= ALaw.encode(src, into: dst) } }
    },
    measure("A-law decode, 160-sample frame", iterations: 200_000) {
        codes.withUnsafeBufferPointer { src in decoded.withUnsafeMutableBufferPointer { dst in sink &+= ALaw.decode(src, into: dst) } }
    },
]
printTable(results, title: "AudioCore per-frame costs")
if sink == 42 { print("") } // keep the work observable
