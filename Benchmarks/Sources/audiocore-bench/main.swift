// Placeholder until the audio core benchmarks land: proves the harness counts allocations.
import BenchKit
import AudioCore

var frame = [Int16](repeating: 1000, count: 160)
var codes = [UInt8](repeating: 0, count: 160)
let r = measure("mulaw encode 160 samples", iterations: 100_000) {
    frame.withUnsafeBufferPointer { src in codes.withUnsafeMutableBufferPointer { dst in _ = MuLaw.encode(src, into: dst) } }
}
let a = measure("array append (allocates)", iterations: 10_000) { var x: [Int] = []; x.append(1); precondition(x.count == 1) }
printTable([r, a], title: "harness check")
