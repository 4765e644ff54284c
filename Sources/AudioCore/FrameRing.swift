// A bounded ring of fixed-size frames, each tagged with an integer (the agent response it belongs to). Push and pop
// copy bytes and allocate nothing. It starts small and `grow()`s by doubling up to its bound when a burst needs it
// (a reallocation per doubling, never per frame), so an idle or real-time call does not hold the bound's memory.
// Overflow policy: at the bound `tryPush` refuses the new frame (counted by the caller); nothing already queued is
// dropped except by `removeAll` (barge-in).

/// See the file header. Loop-owned.
public final class FrameRing {
    /// Bytes per frame.
    public let frameBytes: Int
    /// Frames it can hold now (a power of two).
    public private(set) var capacity: Int
    /// The most it may grow to (a power of two).
    public let maxCapacity: Int
    private var mask: Int
    private var storage: UnsafeMutableRawBufferPointer
    private var tags: UnsafeMutableBufferPointer<Int64>
    private var head = 0, tail = 0

    /// A ring of `capacity` frames that may grow to `maxCapacity` (rounded up to powers of two).
    public init(frameBytes: Int, capacity: Int, maxCapacity: Int? = nil) {
        func pow2(_ n: Int) -> Int {
            var slots = 1
            while slots < max(2, n) { slots <<= 1 }
            return slots
        }
        let slots = pow2(capacity)
        self.frameBytes = frameBytes
        self.capacity = slots
        self.maxCapacity = max(slots, pow2(maxCapacity ?? capacity))
        mask = slots - 1
        storage = .allocate(byteCount: slots * frameBytes, alignment: 16)
        tags = .allocate(capacity: slots)
        tags.initialize(repeating: 0)
    }

    /// Doubles the capacity (up to `maxCapacity`), keeping the frames in order; false at the bound.
    @discardableResult
    public func grow() -> Bool {
        guard capacity < maxCapacity else { return false }
        let newCapacity = capacity * 2
        let newStorage = UnsafeMutableRawBufferPointer.allocate(byteCount: newCapacity * frameBytes, alignment: 16)
        let newTags = UnsafeMutableBufferPointer<Int64>.allocate(capacity: newCapacity)
        newTags.initialize(repeating: 0)
        let n = count
        for i in 0..<n {
            let from = (head + i) & mask
            (newStorage.baseAddress! + i * frameBytes).copyMemory(from: storage.baseAddress! + from * frameBytes, byteCount: frameBytes)
            newTags[i] = tags[from]
        }
        storage.deallocate()
        tags.deallocate()
        storage = newStorage
        tags = newTags
        capacity = newCapacity
        mask = newCapacity - 1
        head = 0
        tail = n
        return true
    }

    deinit {
        storage.deallocate()
        tags.deallocate()
    }

    public var count: Int { tail - head }
    public var isEmpty: Bool { head == tail }
    public var isFull: Bool { count == capacity }

    /// Appends a frame (`bytes.count == frameBytes`); false when full.
    public func tryPush(_ bytes: UnsafeRawBufferPointer, tag: Int64) -> Bool {
        precondition(bytes.count == frameBytes)
        guard !isFull else { return false }
        let slot = tail & mask
        (storage.baseAddress! + slot * frameBytes).copyMemory(from: bytes.baseAddress!, byteCount: frameBytes)
        tags[slot] = tag
        tail += 1
        return true
    }

    /// The oldest frame's tag.
    public var firstTag: Int64? { isEmpty ? nil : tags[head & mask] }

    /// The oldest frame's bytes (valid until the next push or pop).
    public var first: UnsafeRawBufferPointer? {
        isEmpty ? nil : UnsafeRawBufferPointer(rebasing: storage[(head & mask) * frameBytes ..< (head & mask + 1) * frameBytes])
    }

    /// Drops the oldest frame.
    public func removeFirst() {
        precondition(!isEmpty)
        head += 1
    }

    /// Empties the ring; returns how many frames were dropped.
    @discardableResult
    public func removeAll() -> Int {
        let n = count
        head = tail
        return n
    }
}
