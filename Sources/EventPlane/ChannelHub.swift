// EventPlane: Pusher Channels protocol 7 (shared/protocols/pusher-channels.md) for dashboards, and the Pusher HTTP
// API for publishers; Patchbay's own events are published to their channels. Connections live on the event loops
// that accepted them (`PusherConnection`, loop-owned); the channel registry below is shared by all loops behind one
// lock, held only to read or change membership, never while sending: a publish takes a snapshot, then hands each
// loop its subscribers through the loop's mailbox (one hop per loop, not per subscriber).
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
    private let channels = Mutex<[String: Channel]>([:])

    private static func key(_ app: String, _ channel: String) -> String { app + "\u{0}" + channel }

    /// Adds a subscriber (idempotent). Returns the presence members after joining, and whether this socket made
    /// its user a new member (so `member_added` goes to the others).
    func subscribe(app: String, channel: String, _ s: Subscriber, memberInfo: String?) -> (members: [(String, String)], newMember: Bool) {
        channels.withLock { all in
            var c = all[Self.key(app, channel)] ?? Channel()
            var newMember = false
            if c.subscribers[s.socketID] == nil, let user = s.userID {
                if var m = c.members[user] {
                    m.sockets += 1
                    c.members[user] = m
                } else {
                    c.members[user] = (memberInfo ?? "null", 1)
                    newMember = true
                }
            }
            c.subscribers[s.socketID] = s
            all[Self.key(app, channel)] = c
            return (c.members.map { ($0.key, $0.value.info) }.sorted { $0.0 < $1.0 }, newMember)
        }
    }

    /// Removes a subscriber. Returns the user id whose last socket left (for `member_removed`).
    @discardableResult
    func unsubscribe(app: String, channel: String, socketID: String) -> String? {
        channels.withLock { all in
            let k = Self.key(app, channel)
            guard var c = all[k], let s = c.subscribers.removeValue(forKey: socketID) else { return nil }
            var gone: String?
            if let user = s.userID, var m = c.members[user] {
                m.sockets -= 1
                if m.sockets == 0 { c.members[user] = nil; gone = user } else { c.members[user] = m }
            }
            all[k] = c.subscribers.isEmpty ? nil : c
            return gone
        }
    }

    /// Sends `text` to every subscriber of `channel` except `excluding`, one mailbox hop per loop. `seq` is the
    /// event's place in the channel's log (nil for protocol events such as member_added).
    func publish(app: String, channel: String, text: String, excluding: String? = nil, seq: Int64? = nil) {
        let targets = channels.withLock { $0[Self.key(app, channel)]?.subscribers.values.filter { $0.socketID != excluding } ?? [] }
        guard !targets.isEmpty else { return }
        var byLoop: [Int: (EventLoop, [LoopBound<PusherConnection>])] = [:]
        for t in targets { byLoop[t.loop.index, default: (t.loop, [])].1.append(t.connection) }
        for (_, (loop, connections)) in byLoop {
            loop.execute { for c in connections { c.value.deliver(text, channel: channel, seq: seq) } }
        }
    }

    /// Occupied channels of `app` whose names start with `prefix`: (name, subscriptions, users).
    func occupied(app: String, prefix: String) -> [(name: String, subscriptions: Int, users: Int)] {
        let p = app + "\u{0}" + prefix
        return channels.withLock { all in
            all.filter { $0.key.hasPrefix(p) }.map { (String($0.key.dropFirst(app.count + 1)), $0.value.subscribers.count, $0.value.members.count) }
        }.sorted { $0.name < $1.name }
    }

    /// Presence members of a channel (user ids).
    func users(app: String, channel: String) -> [String] {
        channels.withLock { ($0[Self.key(app, channel)]?.members.keys).map(Array.init) ?? [] }.sorted()
    }

    /// Every subscriber of `app` whose presence user id is `user` (for terminate_connections).
    func sockets(app: String, user: String) -> [Subscriber] {
        let p = app + "\u{0}"
        return channels.withLock { all in
            var seen: [String: Subscriber] = [:]
            for (k, c) in all where k.hasPrefix(p) {
                for s in c.subscribers.values where s.userID == user { seen[s.socketID] = s }
            }
            return Array(seen.values)
        }
    }
}
