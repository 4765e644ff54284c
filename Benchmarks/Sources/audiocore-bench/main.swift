// AudioCore micro-benchmarks: nanoseconds and heap allocations per 20 ms frame (release build, BenchKit).
//   cd Benchmarks && swift build -c release --product audiocore-bench && .build/release/audiocore-bench
// Buffers are allocated once, as a call's would be; they are `let` pointers so the timed closure pays no
// exclusivity checks of its own, only the codec's work.
import AudioCore
import BenchKit

let samples = 160 // 20 ms at 8 kHz
let pcm = UnsafeMutableBufferPointer<Int16>.allocate(capacity: samples)
for i in 0..<samples { pcm[i] = Int16(truncatingIfNeeded: i &* 397 &- 30000) }
let codes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: samples)
codes.initialize(repeating: 0)
let decoded = UnsafeMutableBufferPointer<Int16>.allocate(capacity: samples)
decoded.initialize(repeating: 0)
let source = UnsafeBufferPointer(pcm)
let codesIn = UnsafeBufferPointer(codes)

let results = [
    measure("mu-law encode, 160-sample frame", iterations: 200_000) { _ = MuLaw.encode(source, into: codes) },
    measure("mu-law decode, 160-sample frame", iterations: 200_000) { _ = MuLaw.decode(codesIn, into: decoded) },
    measure("A-law encode, 160-sample frame", iterations: 200_000) { _ = ALaw.encode(source, into: codes) },
    measure("A-law decode, 160-sample frame", iterations: 200_000) { _ = ALaw.decode(codesIn, into: decoded) },
]
printTable(results, title: "AudioCore per-frame costs")
print("checksum \(decoded.reduce(0) { $0 &+ Int($1) } &+ codes.reduce(0) { $0 &+ Int($1) })") // keeps the work observable
