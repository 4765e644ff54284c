// EventLoop: one lws_context and the dedicated thread that services it. See Server.swift for the threading model.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
internal import CWebSockets

/// Identifies a scheduled loop timer, for cancelling it.
public struct TimerHandle: Sendable, Hashable {
    let id: UInt64
}

/// One event-loop thread and its libwebsockets context. Loop-owned state is touched only on the loop thread;
/// `execute` is the one door in from other threads.
public final class EventLoop: @unchecked Sendable {
    /// Position in `Server.loops`.
    public let index: Int
    let configuration: ServerConfiguration
    let router: Router
    let logger: Logger
    /// Set once by `Server.init`, before any thread starts.
    var server: Unmanaged<Server>!

    // Cross-thread state.
    private struct Mailbox {
        var jobs: [@Sendable () -> Void] = []
        var context: ContextRef?
    }

    /// The context pointer, handed to other threads only to call lws_cancel_service (the one thread-safe lws call).
    private struct ContextRef: @unchecked Sendable { let pointer: OpaquePointer }
    private let mailbox = Mutex<Mailbox>(Mailbox())
    private let stopRequested = Atomic<Bool>(false)
    private let loopThread = Atomic<UInt>(0)
    private let finished = Atomic<Bool>(false)

    // Loop-owned state.
    var context: OpaquePointer?
    var vhost: OpaquePointer?
    var listenWSI: OpaquePointer?
    var listenFD: Int32 = -1
    var peers: [UInt64: Peer] = [:]
    var nextPeerID: UInt64 = 1
    var draining = false
    let sendBuffer: SendBuffer
    lazy var responseObserver: (@Sendable (String, String, Int) -> Void)? = router.responseObserver
    private var timerHeap = TimerHeap()
    private var timerActions: [UInt64: () -> Void] = [:]
    private var loopTimers: [UInt64: LoopTimer] = [:]
    /// Scratch for `fireTimers` (kept to avoid an allocation per pass).
    private var dueTimers: [(deadline: UInt64, id: UInt64)] = []
    private var nextTimerID: UInt64 = 1
    private var armedDeadline: UInt64 = .max

    // C memory that must outlive the context.
    private let protocols: UnsafeMutablePointer<lws_protocols>
    private let retryPolicy: UnsafeMutablePointer<lws_retry_bo_t>
    private var cStrings: [UnsafeMutablePointer<CChar>] = []
    private var thread: Thread?
    /// The libev loop this thread runs, and the one-element array lws reads it from.
    private var evLoop: UnsafeMutableRawPointer?
    /// The libev timer armed for the earliest deadline of the heap.
    private var evTimer: UnsafeMutableRawPointer?
    /// Every 100 ms: lets lws service and re-arm its own timers (see shim.h).
    private var kickTimer: UnsafeMutableRawPointer?
    private let foreignLoops = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)

    init(index: Int, configuration: ServerConfiguration, router: Router, logger: Logger) {
        self.index = index
        self.configuration = configuration
        self.router = router
        var l = logger
        l[metadataKey: "loop"] = "\(index)"
        self.logger = l
        self.sendBuffer = SendBuffer(capacity: max(configuration.maxWebSocketMessageBytes, 64 << 10))

        protocols = .allocate(capacity: 3)
        protocols.initialize(repeating: lws_protocols(), count: 3)
        retryPolicy = .allocate(capacity: 1)
        retryPolicy.initialize(to: lws_retry_bo_t())
        retryPolicy.pointee.secs_since_valid_ping = UInt16(clamping: configuration.webSocketPingIntervalSeconds)
        retryPolicy.pointee.secs_since_valid_hangup = UInt16(clamping: configuration.webSocketIdleTimeoutSeconds)

        for (i, name) in [EventLoop.protocolName, EventLoop.rawProtocolName].enumerated() {
            let s = strdup(name)!
            cStrings.append(s)
            protocols[i].name = UnsafePointer(s)
            CWebSockets_set_callback(protocols + i, lwsCallback)
            // lws gives every WebSocket its own receive buffer of this size. 4 KiB holds any Twilio or Pusher
            // message whole; larger ones (ElevenLabs audio) arrive in pieces that WebSocketConnection reassembles.
            // At 64 KiB an idle subscriber cost 10.4 KiB of resident memory, at 4 KiB 7.3 (Benchmarks, events).
            protocols[i].rx_buffer_size = 4096
        }
    }

    deinit {
        protocols.deallocate()
        retryPolicy.deallocate()
        foreignLoops.deallocate()
        if let t = evTimer { CWebSockets_timer_free(t) }
        if let t = kickTimer { CWebSockets_timer_free(t) }
        for s in cStrings { free(s) }
    }

    static let protocolName = "patchbay"
    static let rawProtocolName = "patchbay-raw"

    // MARK: - Thread identity

    /// Whether the caller runs on this loop's thread.
    public var inEventLoop: Bool { loopThread.load(ordering: .relaxed) == UInt(pthread_self()) }

    /// Traps in debug builds when called off the loop thread (loop-owned state must not be touched there).
    @inline(__always)
    public func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "loop-owned state touched off its event loop", file: file, line: line)
    }

    // MARK: - Mailbox

    /// Runs `work` on this loop's thread, soon. Safe from any thread; the only way in from outside the loop.
    /// Jobs from one thread run in the order they were posted.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        mailbox.withLock { box in
            let wasEmpty = box.jobs.isEmpty
            box.jobs.append(work)
            if wasEmpty, let ctx = box.context { lws_cancel_service(ctx.pointer) }
        }
    }

    func drainMailbox() {
        let jobs = mailbox.withLock { box -> [@Sendable () -> Void] in
            let jobs = box.jobs
            box.jobs.removeAll(keepingCapacity: true)
            return jobs
        }
        for job in jobs { job() }
    }

    // MARK: - Timers (deadline-based on the monotonic clock, one libev timer armed for the earliest)

    /// Nanoseconds on the monotonic clock, the time base of `scheduleTimer(at:)`.
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Runs `body` on the loop at `deadlineNanos` (monotonic) or as soon after as the loop can. Loop thread only.
    /// Pace with deadlines (`next = previous + 20 ms`), never with `now + interval`, so lateness does not accumulate.
    @discardableResult
    public func scheduleTimer(at deadlineNanos: UInt64, _ body: @escaping () -> Void) -> TimerHandle {
        assertInEventLoop()
        let id = nextTimerID
        nextTimerID += 1
        timerActions[id] = body
        timerHeap.push(deadline: deadlineNanos, id: id)
        armTimer()
        return TimerHandle(id: id)
    }

    /// Cancels a timer that has not fired yet (no effect otherwise). Loop thread only.
    public func cancelTimer(_ handle: TimerHandle) {
        assertInEventLoop()
        timerActions[handle.id] = nil
    }

    /// A timer that is scheduled again and again without allocating (for per-frame pacing): `body` is stored once.
    /// Loop thread only; call `invalidate()` when done with it.
    public func makeTimer(_ body: @escaping () -> Void) -> LoopTimer {
        assertInEventLoop()
        let t = LoopTimer(loop: self, id: nextTimerID, body: body)
        nextTimerID += 1
        loopTimers[t.id] = t
        return t
    }

    func schedule(_ timer: LoopTimer) {
        timerHeap.push(deadline: timer.deadline, id: timer.id)
        armTimer()
    }

    func invalidate(_ timer: LoopTimer) { loopTimers[timer.id] = nil }

    /// Whether a heap entry still stands for a pending action.
    private func isLive(_ entry: (deadline: UInt64, id: UInt64)) -> Bool {
        if timerActions[entry.id] != nil { return true }
        if let t = loopTimers[entry.id], t.isScheduled, t.deadline == entry.deadline { return true }
        return false
    }

    private func armTimer() {
        guard let ev = evLoop, let timer = evTimer else { return }
        while let top = timerHeap.peek(), !isLive(top) { _ = timerHeap.pop() }
        guard let next = timerHeap.peek() else {
            if armedDeadline != .max { CWebSockets_timer_stop(ev, timer); armedDeadline = .max }
            return
        }
        if next.deadline == armedDeadline { return }
        let now = Self.monotonicNanos()
        armedDeadline = next.deadline
        CWebSockets_timer_start(ev, timer, next.deadline > now ? Double(next.deadline - now) / 1e9 : 0)
    }

    func fireTimers() {
        armedDeadline = .max
        // Timers due within 50 us fire now: the poll wakes with about that resolution. Only what was due when this
        // pass began runs in it: a timer that reschedules itself into the past fires again on the next loop turn,
        // after the sockets, instead of spinning here forever.
        let now = Self.monotonicNanos() &+ 50_000
        dueTimers.removeAll(keepingCapacity: true)
        while let top = timerHeap.peek(), top.deadline <= now {
            dueTimers.append(timerHeap.pop()!)
        }
        for entry in dueTimers {
            if let action = timerActions.removeValue(forKey: entry.id) {
                action()
            } else if let t = loopTimers[entry.id], t.isScheduled, t.deadline == entry.deadline {
                t.isScheduled = false
                t.body?()
            }
        }
        armTimer()
    }

    // MARK: - Lifecycle

    /// Creates this loop's lws context (server role, no listener of its own) and its own listening socket with
    /// SO_REUSEPORT, adopted into the context as a raw descriptor: lws 4.1 sets SO_REUSEPORT only for several
    /// service threads of one context, which LWS_MAX_SMP 1 rules out, so Patchbay binds the shared port itself
    /// and adopts each accepted socket into lws (`lws_adopt_socket_vhost`). Returns the bound port.
    func createContext(port: Int) throws -> Int {
        var info = lws_context_creation_info()
        info.port = -2 // CONTEXT_PORT_NO_LISTEN_SERVER: server role, no listener
        info.protocols = UnsafePointer(protocols)
        info.options = CWebSockets_option_ssl_global_init() | CWebSockets_option_fallback() | CWebSockets_option_validate_utf8()
            | CWebSockets_option_libev()
        // Our own libev loop (epoll), run by this loop's thread; lws registers its sockets and timers on it.
        guard let ev = CWebSockets_ev_loop_new() else { throw TransportError("cannot create the libev loop") }
        evLoop = ev
        evTimer = CWebSockets_timer_new(evTimerFired, Unmanaged.passUnretained(self).toOpaque())
        kickTimer = CWebSockets_timer_new(kickFired, Unmanaged.passUnretained(self).toOpaque())
        foreignLoops.pointee = ev
        info.foreign_loops = foreignLoops
        info.user = Unmanaged.passUnretained(self).toOpaque()
        info.gid = -1
        info.uid = -1
        info.timeout_secs = UInt32(max(1, configuration.httpIdleTimeoutSeconds))
        info.keepalive_timeout = Int32(max(1, configuration.httpIdleTimeoutSeconds))
        info.retry_and_idle_policy = UnsafePointer(retryPolicy)
        for (value, assign) in [(Self.rawProtocolName, 0), ("raw-skt", 1)] {
            let s = strdup(value)!
            cStrings.append(s)
            if assign == 0 { info.listen_accept_protocol = UnsafePointer(s) } else { info.listen_accept_role = UnsafePointer(s) }
        }
        let vhostName = strdup("default")!
        cStrings.append(vhostName)
        info.vhost_name = UnsafePointer(vhostName)
        if let cert = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            let c = strdup(cert)!, k = strdup(key)!
            cStrings.append(c); cStrings.append(k)
            info.ssl_cert_filepath = UnsafePointer(c)
            info.ssl_private_key_filepath = UnsafePointer(k)
        }
        // HTTP/1.1 only over TLS: every handler here assumes h1 framing (one write per response, WebSocket over h1).
        let alpn = strdup("http/1.1")!
        cStrings.append(alpn)
        info.alpn = UnsafePointer(alpn)
        info.pt_serv_buf_size = 16384
        let listener = try Listener(host: configuration.host, port: port)
        guard let ctx = lws_create_context(&info) else {
            listener.close()
            throw TransportError("cannot create the libwebsockets context (bad TLS files?)")
        }
        context = ctx
        guard let vhost = lws_get_vhost_by_name(ctx, vhostName) else {
            listener.close()
            throw TransportError("libwebsockets created no vhost")
        }
        self.vhost = vhost
        var fd = lws_sock_file_fd_type()
        fd.filefd = listener.fd
        let protocolName = strdup(Self.rawProtocolName)!
        defer { free(protocolName) }
        guard let wsi = lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, fd, protocolName, nil) else {
            listener.close()
            throw TransportError("cannot adopt the listening socket")
        }
        listenWSI = wsi
        listenFD = listener.fd
        let ref = ContextRef(pointer: ctx)
        mailbox.withLock { $0.context = ref }
        return listener.port
    }

    /// Accepts every pending connection on the listening socket and hands each to lws as an HTTP connection.
    func acceptPending() {
        guard listenFD >= 0, let vhost else { return }
        for _ in 0..<128 {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            if draining { Glibc.close(fd); continue }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if lws_adopt_socket_vhost(vhost, fd) == nil { Glibc.close(fd) }
        }
    }

    /// Stops accepting: closes this loop's listening socket (lws closes the descriptor with its wsi).
    func stopListening() {
        guard let wsi = listenWSI else { return }
        listenWSI = nil
        listenFD = -1
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC)
    }

    func destroyContextBeforeStart() {
        mailbox.withLock { $0.context = nil }
        if let ctx = context { lws_context_destroy(ctx) }
        context = nil
        if let ev = evLoop { CWebSockets_ev_loop_destroy(ev) }
        evLoop = nil
        finished.store(true, ordering: .releasing)
    }

    func startThread() {
        let t = Thread { [self] in self.run() }
        t.name = "patchbay-loop-\(index)"
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    private func run() {
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        drainMailbox()
        armTimer()
        if let ev = evLoop, let t = kickTimer { CWebSockets_timer_start_repeating(ev, t, 0.1) }
        while !stopRequested.load(ordering: .acquiring) {
            _ = CWebSockets_ev_run_once(evLoop)
        }
        // Destroying the context closes every connection; their close callbacks run here, on the loop thread.
        mailbox.withLock { $0.context = nil }
        let ctx = context
        context = nil
        lws_context_destroy(ctx)
        drainMailbox()
        if let ev = evLoop, let t = evTimer { CWebSockets_timer_stop(ev, t) }
        if let ev = evLoop, let t = kickTimer { CWebSockets_timer_stop(ev, t) }
        if let ev = evLoop { CWebSockets_ev_loop_destroy(ev) }
        evLoop = nil
        finished.store(true, ordering: .releasing)
    }

    func stop() {
        stopRequested.store(true, ordering: .releasing)
        mailbox.withLock { box in if let ctx = box.context { lws_cancel_service(ctx.pointer) } }
    }

    func join() async {
        while !finished.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(1)) }
    }

    /// Draining: refuse new connections, close every WebSocket with 1001 (going away).
    func beginDrain() {
        draining = true
        stopListening()
        for peer in peers.values {
            if let ws = peer.webSocket, ws.isOpen { ws.close(.goingAway, reason: "server shutting down") }
        }
    }

    /// Hangs up HTTP connections with no request in progress (idle keep-alive).
    func closeIdleConnections() {
        for peer in peers.values where peer.webSocket == nil && !peer.hasRequestInProgress {
            if let wsi = peer.wsi { lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC) }
        }
    }

    // MARK: - Peers

    func peer(for wsi: OpaquePointer) -> Peer {
        if let raw = lws_get_opaque_user_data(wsi) { return Unmanaged<Peer>.fromOpaque(raw).takeUnretainedValue() }
        let p = Peer(id: nextPeerID, wsi: wsi)
        nextPeerID += 1
        attach(p, to: wsi)
        return p
    }

    func attach(_ p: Peer, to wsi: OpaquePointer) {
        p.wsi = wsi
        lws_set_opaque_user_data(wsi, Unmanaged.passRetained(p).toOpaque())
        peers[p.id] = p
        server.takeUnretainedValue().openConnections.add(1, ordering: .relaxed)
    }

    func existingPeer(_ wsi: OpaquePointer?) -> Peer? {
        guard let wsi, let raw = lws_get_opaque_user_data(wsi) else { return nil }
        let p = Unmanaged<Peer>.fromOpaque(raw).takeUnretainedValue()
        if p.wsi == nil { p.wsi = wsi } // client connections learn their wsi at their first callback
        return p
    }

    func release(_ wsi: OpaquePointer) {
        guard let raw = lws_get_opaque_user_data(wsi) else { return }
        lws_set_opaque_user_data(wsi, nil)
        let p = Unmanaged<Peer>.fromOpaque(raw).takeRetainedValue()
        peers[p.id] = nil
        p.wsi = nil
        server.takeUnretainedValue().openConnections.subtract(1, ordering: .relaxed)
        if p.countedInFlight {
            p.countedInFlight = false
            server.takeUnretainedValue().inFlightRequests.subtract(1, ordering: .relaxed)
        }
        if let ws = p.webSocket { ws.didTerminate(loop: self) }
    }
}

/// A reusable loop timer (see `EventLoop.makeTimer`): schedule, reschedule or cancel it any number of times
/// without allocating. Loop-owned.
public final class LoopTimer {
    unowned let loop: EventLoop
    let id: UInt64
    /// Released by `invalidate()`, so a body may capture its owner strongly (a weak capture would put the owner's
    /// reference count in a side table and make every retain of it slow; measured on the per-frame path).
    var body: (() -> Void)?
    /// When it fires next (monotonic ns), if scheduled.
    public internal(set) var deadline: UInt64 = 0
    /// Whether it will fire.
    public internal(set) var isScheduled = false

    init(loop: EventLoop, id: UInt64, body: @escaping () -> Void) {
        self.loop = loop
        self.id = id
        self.body = body
    }

    /// Fires at `deadlineNanos` (monotonic), replacing any earlier schedule.
    public func schedule(at deadlineNanos: UInt64) {
        if isScheduled && deadline == deadlineNanos { return }
        deadline = deadlineNanos
        isScheduled = true
        loop.schedule(self)
    }

    /// Will not fire (until scheduled again).
    public func cancel() { isScheduled = false }

    /// Releases the timer's body; it never fires again.
    public func invalidate() {
        isScheduled = false
        body = nil
        loop.invalidate(self)
    }
}

@available(*, unavailable)
extension LoopTimer: Sendable {}

/// A binary min-heap of (deadline, id).
struct TimerHeap {
    private var items: [(deadline: UInt64, id: UInt64)] = []

    mutating func push(deadline: UInt64, id: UInt64) {
        items.append((deadline, id))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].deadline <= items[i].deadline { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    func peek() -> (deadline: UInt64, id: UInt64)? { items.first }

    mutating func pop() -> (deadline: UInt64, id: UInt64)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && items[l].deadline < items[m].deadline { m = l }
            if r < items.count && items[r].deadline < items[m].deadline { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}

/// The one send buffer of a loop: `LWS_PRE` bytes of head-room reserved once, in front of the payload, as
/// lws_write requires. Callers never compute LWS_PRE.
final class SendBuffer {
    static let headroom = CWebSockets_pre()
    private(set) var storage: UnsafeMutableRawPointer
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(byteCount: Self.headroom + capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    /// The payload area, at least `count` bytes (grows, rarely, for an oversized HTTP response).
    func payload(count: Int) -> UnsafeMutableRawPointer {
        if count > capacity {
            storage.deallocate()
            capacity = max(count, capacity * 2)
            storage = .allocate(byteCount: Self.headroom + capacity, alignment: 16)
        }
        return storage + Self.headroom
    }
}

/// The lws kick: a write to lws's own cancel pipe, whose handling ends in lws's timer re-arm.
private let kickFired: @convention(c) (UnsafeMutableRawPointer?) -> Void = { owner in
    guard let owner else { return }
    let loop = Unmanaged<EventLoop>.fromOpaque(owner).takeUnretainedValue()
    if let ctx = loop.context { lws_cancel_service(ctx) }
}

/// The deadline-heap timer: libev calls it on the loop thread.
private let evTimerFired: @convention(c) (UnsafeMutableRawPointer?) -> Void = { owner in
    guard let owner else { return }
    Unmanaged<EventLoop>.fromOpaque(owner).takeUnretainedValue().fireTimers()
}

