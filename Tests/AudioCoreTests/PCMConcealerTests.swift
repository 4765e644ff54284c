import Testing
@testable import AudioCore

@Suite("PCM concealment")
struct PCMConcealerTests {
    @Test("Repeats the last frame fading to silence over 60 ms, then quiet comfort noise; a good frame resets")
    func fadeThenNoise() {
        let c = PCMConcealer(frameSamples: 160)
        let good = [Int16](repeating: 10_000, count: 160)
        good.withUnsafeBufferPointer { c.received($0) }
        var out = [Int16](repeating: 0, count: 160)
        var peaks: [Int] = []
        for _ in 0..<6 {
            out.withUnsafeMutableBufferPointer { c.conceal(into: $0) }
            peaks.append(out.map { abs(Int($0)) }.max()!)
        }
        #expect(peaks[0] <= 10_000 && peaks[0] > 6_000)
        #expect(peaks[0] > peaks[1] && peaks[1] > peaks[2], "fading: \(peaks)")
        #expect(peaks[2] < 3_500)
        #expect(peaks[3] > 0 && peaks[3] <= 32, "comfort noise, not silence and not loud: \(peaks)")
        #expect(c.run == 6)
        good.withUnsafeBufferPointer { c.received($0) }
        #expect(c.run == 0)
        out.withUnsafeMutableBufferPointer { c.conceal(into: $0) }
        #expect(out.map { abs(Int($0)) }.max()! > 6_000)
    }

    @Test("The fade is continuous across frame edges (no click between concealed frames)")
    func continuousFade() {
        let c = PCMConcealer(frameSamples: 160)
        [Int16](repeating: 8_000, count: 160).withUnsafeBufferPointer { c.received($0) }
        var a = [Int16](repeating: 0, count: 160), b = [Int16](repeating: 0, count: 160)
        a.withUnsafeMutableBufferPointer { c.conceal(into: $0) }
        b.withUnsafeMutableBufferPointer { c.conceal(into: $0) }
        #expect(abs(Int(a.last!) - Int(b.first!)) < 100)
    }
}
