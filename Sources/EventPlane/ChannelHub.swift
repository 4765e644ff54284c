// EventPlane: Pusher Channels protocol 7 (shared/protocols/pusher-channels.md) for dashboards, and the Pusher HTTP
// API for publishers; Patchbay's own events are published to their channels. Connections live on the event loops
// that accepted them (`PusherConnection`, loop-owned); the channel registry below is shared by all loops behind one
// lock, held only to read or change membership, never while sending: a publish takes a snapshot, then hands each
// loop its subscribers through the loop's mailbox (one hop per loop, not per subscriber) into that loop's FIFO
// fan-out queue, which delivers 256 per turn of the loop so a big fan-out never holds a loop that also carries calls.
import Foundation
import Synchronization
import Transport

/// A subscriber as the registry knows it.
struct Subscriber: Sendable {
    let socketID: String
    let loop: EventLoop
    let connection: LoopBound<PusherConnection>
    /// Presence channels: the member's user id.
    let userID: String?
}

/// Every app's channels and their subscribers.
final class ChannelHub: Sendable {
    struct Channel {
        var subscribers: [String: Subscriber] = [:]
        /// Presence: user id -> (user_info JSON, sockets of that user in the channel).
        var members: [String: (info: String, sockets: Int)] = [:]
    }
    struct State {
        var channels: [String: Channel] = [:]
        /// Cache channels: the last event published (as delivered) and when, kept `cacheSeconds` (§5).
        var cache: [String: (text: String, at: Double)] = [:]
    }
    private let state = Mutex(State())
    /// How long a cache channel remembers its last event (Pusher: 30 minutes).
    static let cacheSeconds = 1800.0

    private static func key(_ app: String, _ channel: String) -> String { app + "\u{0}" + channel }

    /// `cache-`, `private-cache-`, `private-encrypted-cache-` and `presence-cache-` channels.
    static func isCacheChannel(_ name: String) -> Bool {
        name.hasPrefix("cache-") || name.hasPrefix("private-cache-") || name.hasPrefix("private-encrypted-cache-") || name.hasPrefix("presence-cache-")
    }

    /// Presence members per channel (Pusher's limit): one more is refused with `subscription_error` 4100.
    static let maxPresenceMembers = 100

    /// What joining a channel changed.
    struct Joined {
        /// Presence members after joining: (user id, user_info JSON), sorted.
        var members: [(String, String)]
        /// This socket made its user a member (so `member_added` goes to the others).
        var newMember: Bool
        /// The channel had no subscriber before.
        var occupied: Bool
        /// A cache channel's remembered event.
        var cached: String?
    }

    /// Adds a subscriber (idempotent); nil when the presence channel is full.
    func subscribe(app: String, channel: String, _ s: Subscriber, memberInfo: String?, now: Double = 0) -> Joined? {
        state.withLock { st in
            let k = Self.key(app, channel)
            let occupied = st.channels[k] == nil
            var c = st.channels[k] ?? Channel()
            var newMember = false
            if c.subscribers[s.socketID] == nil, let user = s.userID {
                if var m = c.members[user] {
                    m.sockets += 1
                    c.members[user] = m
                } else {
                    guard c.members.count < Self.maxPresenceMembers || !channel.hasPrefix("presence-") else { return nil }
                    c.members[user] = (memberInfo ?? "null", 1)
                    newMember = true
                }
            }
            c.subscribers[s.socketID] = s
            st.channels[k] = c
            var cached: String?
            if let entry = st.cache[k] {
                if now - entry.at <= Self.cacheSeconds { cached = entry.text } else { st.cache[k] = nil }
            }
            return Joined(members: c.members.map { ($0.key, $0.value.info) }.sorted { $0.0 < $1.0 }, newMember: newMember,
                          occupied: occupied, cached: cached)
        }
    }

    /// Removes a subscriber. Returns the user id whose last socket left (for `member_removed`) and whether the
    /// channel is now empty.
    @discardableResult
    func unsubscribe(app: String, channel: String, socketID: String) -> (gone: String?, vacated: Bool) {
        state.withLock { st in
            let k = Self.key(app, channel)
            guard var c = st.channels[k], let s = c.subscribers.removeValue(forKey: socketID) else { return (nil, false) }
            var gone: String?
            if let user = s.userID, var m = c.members[user] {
                m.sockets -= 1
                if m.sockets == 0 { c.members[user] = nil; gone = user } else { c.members[user] = m }
            }
            st.channels[k] = c.subscribers.isEmpty ? nil : c
            return (gone, c.subscribers.isEmpty)
        }
    }

    /// Sends `text` to every subscriber of `channel` except `excluding`, one mailbox hop per loop (then the loop's
    /// FanoutQueue). `seq` is the
    /// event's place in the channel's log (nil for protocol events such as member_added). `cachedAt`: a published
    /// event (not a protocol or client event), remembered by cache channels.
    func publish(app: String, channel: String, text: String, excluding: String? = nil, seq: Int64? = nil, cachedAt: Double? = nil) {
        let k = Self.key(app, channel)
        let targets = state.withLock { st in
            if let cachedAt, Self.isCacheChannel(channel) { st.cache[k] = (text, cachedAt) }
            return st.channels[k]?.subscribers.values.filter { $0.socketID != excluding } ?? []
        }
        guard !targets.isEmpty else { return }
        var byLoop: [Int: (EventLoop, [LoopBound<PusherConnection>])] = [:]
        for t in targets { byLoop[t.loop.index, default: (t.loop, [])].1.append(t.connection) }
        for (index, (loop, connections)) in byLoop {
            let queue = fanout(index)
            loop.execute { queue.value.add(FanoutQueue.Job(targets: connections, text: text, channel: channel, seq: seq), on: loop) }
        }
    }

    /// Each loop's fan-out queue (made on first use, then only touched on its loop).
    private let queues = Mutex<[Int: LoopBound<FanoutQueue>]>([:])

    private func fanout(_ loopIndex: Int) -> LoopBound<FanoutQueue> {
        queues.withLock { q in
            if let existing = q[loopIndex] { return existing }
            let made = LoopBound(FanoutQueue())
            q[loopIndex] = made
            return made
        }
    }

    /// Whether a cache channel remembers an event now (the HTTP API's `info=cache`).
    func hasCached(app: String, channel: String, now: Double) -> Bool {
        state.withLock { st in st.cache[Self.key(app, channel)].map { now - $0.at <= Self.cacheSeconds } ?? false }
    }

    /// Occupied channels of `app` whose names start with `prefix`: (name, subscriptions, users).
    func occupied(app: String, prefix: String) -> [(name: String, subscriptions: Int, users: Int)] {
        let p = app + "\u{0}"
        let userChannels = prefix.hasPrefix("#") // `#server-to-user-` channels are listed only when asked for
        return state.withLock { st in
            st.channels.compactMap { k, c -> (name: String, subscriptions: Int, users: Int)? in
                guard k.hasPrefix(p) else { return nil }
                let name = String(k.dropFirst(p.count))
                guard name.hasPrefix(prefix), userChannels || !name.hasPrefix("#") else { return nil }
                return (name, c.subscribers.count, c.members.count)
            }
        }.sorted { $0.name < $1.name }
    }

    /// Presence members of a channel (user ids).
    func users(app: String, channel: String) -> [String] {
        state.withLock { ($0.channels[Self.key(app, channel)]?.members.keys).map(Array.init) ?? [] }.sorted()
    }

    /// Every socket of `app` signed in as `user` or a presence member as `user` (for terminate_connections).
    func sockets(app: String, user: String) -> [Subscriber] {
        let p = app + "\u{0}"
        return state.withLock { st in
            var seen: [String: Subscriber] = [:]
            for (k, c) in st.channels where k.hasPrefix(p) {
                for s in c.subscribers.values where s.userID == user { seen[s.socketID] = s }
            }
            return Array(seen.values)
        }
    }
}

/// One loop's deliveries, in publish order, at most `slice` per turn of the loop: a publish to 10,000 subscribers
/// is about 60 ms of writes, and a loop that also carries calls must not stop its 20 ms media pacing for that long.
/// Between slices the loop serves its sockets and timers; deliveries keep their order because there is one queue
/// per loop and a job finishes before the next starts. Loop-owned.
final class FanoutQueue {
    struct Job {
        var targets: [LoopBound<PusherConnection>]
        var text: String
        var channel: String
        var seq: Int64?
        var next = 0
    }
    /// Deliveries per turn of the loop (about 1.5 ms of writes on this machine kind).
    static let slice = 256
    private var jobs: [Job] = []
    private var head = 0
    private var draining = false

    func add(_ job: Job, on loop: EventLoop) {
        jobs.append(job)
        if !draining {
            draining = true
            drain(on: loop)
        }
    }

    private func drain(on loop: EventLoop) {
        var budget = Self.slice
        while head < jobs.count && budget > 0 {
            let n = min(budget, jobs[head].targets.count - jobs[head].next)
            let start = jobs[head].next
            let text = jobs[head].text, channel = jobs[head].channel, seq = jobs[head].seq
            for i in start..<(start + n) { jobs[head].targets[i].value.deliver(text, channel: channel, seq: seq) }
            jobs[head].next += n
            budget -= n
            if jobs[head].next == jobs[head].targets.count { head += 1 }
        }
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: jobs.capacity <= 64)
            head = 0
            draining = false
        } else {
            let me = LoopBound(self)
            loop.execute { me.value.drain(on: loop) } // after the loop has served its sockets once
        }
    }
}
