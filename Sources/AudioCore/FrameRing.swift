// A bounded ring of fixed-size frames, each tagged with an integer (the agent response it belongs to). Storage is
// allocated once; push and pop copy bytes and allocate nothing. Overflow policy: `tryPush` refuses the new frame
// (counted by the caller); nothing already queued is dropped except by `removeAll` (barge-in).

/// See the file header. Loop-owned.
public final class FrameRing {
    /// Bytes per frame.
    public let frameBytes: Int
    /// Frames it can hold (a power of two).
    public let capacity: Int
    private let mask: Int
    private let storage: UnsafeMutableRawBufferPointer
    private let tags: UnsafeMutableBufferPointer<Int64>
    private var head = 0, tail = 0

    public init(frameBytes: Int, capacity: Int) {
        var slots = 1
        while slots < max(2, capacity) { slots <<= 1 }
        self.frameBytes = frameBytes
        self.capacity = slots
        mask = slots - 1
        storage = .allocate(byteCount: slots * frameBytes, alignment: 16)
        tags = .allocate(capacity: slots)
        tags.initialize(repeating: 0)
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
