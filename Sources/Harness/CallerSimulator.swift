// `patchbay sim caller`: a Twilio Media Streams caller (shared/protocols/twilio-media-streams.md §3-§7). It signs the
// upgrade like Twilio, sends `connected` and `start`, streams mu-law 20 ms frames on deadlines, sends DTMF, plays
// what it receives on a model of Twilio's playout queue and echoes marks when their audio has "played" (all pending
// marks at once on `clear`, as Twilio does), checks every message it receives against what Twilio accepts, and
// reports what it measured.
import AudioCore
import Foundation
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

/// What the caller simulator does.
public struct CallerSimulatorConfiguration: Sendable {
    /// `ws://HOST:PORT/twilio/media`.
    public var url: String
    /// The URL to sign (as Twilio would: the public `wss://` URL); default `url`.
    public var signedURL: String?
    /// Auth token to sign the upgrade with; nil sends no signature.
    public var authToken: String?
    public var accountSID = "AC00000000000000000000000000000001"
    public var callSID = "CA" + Signing.hex(Signing.randomBytes(16))
    public var streamSID = "MZ" + Signing.hex(Signing.randomBytes(16))
    /// `<Parameter>`s (what the TwiML would carry).
    public var customParameters: [String: String] = [:]
    /// mu-law 8 kHz audio to stream (repeated to fill `durationMillis`).
    public var audio: [UInt8] = []
    /// How long to stream (ms); default the audio's length.
    public var durationMillis: Int?
    /// Keep listening this long after the last frame before hanging up (ms).
    public var listenAfterMillis = 1500
    /// Digits to press, at these times (ms from the first frame).
    public var dtmf: [(atMillis: Int, digit: String)] = []
    /// Hang up (send `stop`, close 1000) when done; false waits for the far end to end the call.
    public var hangUp = true
    /// Give up after this long in any case (ms).
    public var maxCallMillis = 120_000
    /// After the audio, keep streaming silence frames until hanging up, as Twilio streams the line for the whole
    /// call (false: go quiet, as a line with upstream silence suppression would).
    public var silenceAfterAudio = true
    /// Mark the audio to measure latency (load runs; replaces `audio`), see LatencyProbe.swift.
    public var probe = ProbeMode.none
    /// Where click times meet (`.clicks`).
    public var probeRegistry: ProbeRegistry?
    /// Keep every byte sent and received in the report (off for load runs).
    public var recordAudio = true
    /// Skip sending media during these intervals (ms from the first frame): upstream silence suppression.
    public var mediaGaps: [Range<Int>] = []

    public init(url: String) { self.url = url }
}

/// What the caller measured.
public struct CallerReport: Sendable {
    public var connected = false
    /// The call's SID (from the configuration).
    public var callSID = ""
    /// HTTP status or close code when the connection failed or was refused.
    public var closeCode: UInt16?
    public var closeReason = ""
    public var framesSent = 0
    /// Sends more than 5 ms after their 20 ms slot (the simulator's own lateness; a run with any is suspect).
    public var lateSends = 0
    public var mediaReceived = 0
    public var payloadSizes: Set<Int> = []
    public var marksReceived = 0
    public var marksEchoed = 0
    public var clears = 0
    /// Monotonic ns of each `clear` and of each media message received.
    public var clearTimes: [UInt64] = []
    public var mediaTimes: [UInt64] = []
    public var protocolViolations = 0
    public var violationSamples: [String] = []
    /// All mu-law bytes received, in order, and all sent.
    public var receivedAudio: [UInt8] = []
    public var sentAudio: [UInt8] = []
    /// Ended by a REST hang-up (through `TwilioAPISimulator`).
    public var hungUpByAPI = false
    public var startedAt: UInt64 = 0
    /// First media received (monotonic ns; 0 if none).
    public var firstMediaAt: UInt64 = 0
    /// Latency probe results.
    public var probe = ProbeSamples()
    public var firstFrameAt: UInt64 = 0
    public var endedAt: UInt64 = 0

    /// When the last frame was sent (monotonic ns).
    public var lastFrameAt: UInt64 = 0

    /// Longest silence between consecutive media messages after the first (ms), counting only media that arrived
    /// while the caller was still streaming plus `graceMillis` (after that the far end legitimately goes quiet).
    public func longestGapMillis(graceMillis: Int = 40) -> Double {
        let until = lastFrameAt + UInt64(graceMillis) * 1_000_000
        let times = mediaTimes.filter { $0 <= until }
        return zip(times, times.dropFirst()).map { Double($1 - $0) / 1e6 }.max() ?? 0
    }

    /// Echo latency (ms) and correlation: the lag at which the received audio best matches what was sent.
    public func echoLatency(maxMillis: Int = 1000) -> (millis: Double, correlation: Double) {
        let sent = MuLaw.decode(sentAudio), got = MuLaw.decode(receivedAudio)
        let r = AudioClip.bestLag(sent, got, maxLag: maxMillis * 8)
        return (Double(r.lag) / 8, r.correlation)
    }
}

/// Runs simulated calls on a Transport event loop (several calls may share one).
public enum CallerSimulator {
    /// A client-only server (one loop, bound to 127.0.0.1 on a free port) to run callers on.
    public static func makeClientServer(loops: Int = 1, logger: Logger) throws -> Server {
        var settings = ServerConfiguration()
        settings.host = "127.0.0.1"
        settings.port = 0
        settings.loops = loops
        settings.maxWebSocketMessageBytes = 1 << 20
        let server = Server(configuration: settings, router: Router(), logger: logger)
        try server.start()
        return server
    }

    /// Places one call and returns what was measured when it ends.
    public static func run(_ configuration: CallerSimulatorConfiguration, on loop: EventLoop,
                           api: TwilioAPISimulator? = nil) async -> CallerReport {
        await withCheckedContinuation { (continuation: CheckedContinuation<CallerReport, Never>) in
            let done = DoneOnce(continuation)
            loop.execute {
                let session = CallerSession(configuration: configuration, loop: loop, done: done)
                api?.register(callSID: configuration.callSID, loop: loop, session: session)
                session.begin()
            }
        }
    }
}

/// Resumes a continuation exactly once.
final class DoneOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<CallerReport, Never>?>
    init(_ c: CheckedContinuation<CallerReport, Never>) { continuation = Mutex(c) }
    func resume(_ report: CallerReport) {
        let c = continuation.withLock { c -> CheckedContinuation<CallerReport, Never>? in
            defer { c = nil }
            return c
        }
        c?.resume(returning: report)
    }
}

/// One simulated call. Loop-owned.
final class CallerSession: WebSocketHandler {
    let config: CallerSimulatorConfiguration
    let loop: EventLoop
    let done: DoneOnce
    var report = CallerReport()
    var connection: WebSocketConnection?
    var timer: LoopTimer?
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 160, alignment: 16)
    let decoded = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    let message = JSONMessageBuffer(capacity: 1024)
    var sequence: Int64 = 1
    var frameIndex = 0
    var totalFrames = 0
    var nextFrameAt: UInt64 = 0
    var endAt: UInt64 = .max
    var deadline: UInt64 = .max
    var dtmfIndex = 0
    var finished = false
    var stopped = false
    var silenceFrames = 0
    var highestSequence = -1
    var closeAt: UInt64 = .max
    var probeCall: ProbeRegistry.Call?
    // Twilio's playout model.
    var queuedUntil: UInt64 = 0
    var pendingMarks: [(name: String, due: UInt64)] = []

    init(configuration: CallerSimulatorConfiguration, loop: EventLoop, done: DoneOnce) {
        config = configuration
        self.loop = loop
        self.done = done
        let duration = configuration.durationMillis ?? (configuration.audio.count / 8)
        totalFrames = max(0, duration / 20)
    }

    deinit {
        frame.deallocate()
        decoded.deallocate()
    }

    static func now() -> UInt64 { EventLoop.monotonicNanos() }

    func begin() {
        report.startedAt = Self.now()
        report.callSID = config.callSID
        var headers = HTTPHeaders()
        if let token = config.authToken {
            headers.add(name: "X-Twilio-Signature", value: TwilioRequestSignature.compute(authToken: token, url: config.signedURL ?? config.url))
        }
        connection = loop.connectWebSocket(url: config.url, headers: headers, handler: self)
        connection?.maxMessageBytes = 1 << 20
        timer = loop.makeTimer { self.tick() } // released by invalidate() in end()
        deadline = report.startedAt + UInt64(config.maxCallMillis) * 1_000_000
        timer?.schedule(at: deadline)
    }

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        report.connected = true
        connection.send(text: "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}")
        let start = TwilioStart(streamSID: config.streamSID, accountSID: config.accountSID, callSID: config.callSID,
                                customParameters: config.customParameters)
        connection.send(text: start.json())
        let now = Self.now()
        report.firstFrameAt = now
        nextFrameAt = now
        tick()
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        let now = Self.now()
        guard message.kind == .text else { violation("binary frame"); return }
        let s = JSONScanner(message.bytes)
        guard let root = s.rootObject(), let ev = s.member("event", of: root) else { violation("not a JSON object with event"); return }
        var keys = 0
        s.forEachMember(of: root) { _, _ in keys += 1; return true }
        guard let sid = s.member("streamSid", of: root), s.string(sid) == config.streamSID else {
            violation("missing or wrong streamSid")
            return
        }
        if s.equals(ev, "media") {
            guard keys == 3, let m = s.member("media", of: root), let p = s.member("payload", of: m) else { violation("media shape"); return }
            var mk = 0
            s.forEachMember(of: m) { _, _ in mk += 1; return true }
            if mk != 1 { violation("media has fields besides payload") }
            guard let n = Base64.decode(s.raw(p), into: decoded) else { violation("media payload is not base64"); return }
            report.mediaReceived += 1
            report.payloadSizes.insert(n)
            report.mediaTimes.append(now)
            if report.firstMediaAt == 0 { report.firstMediaAt = now }
            let bytes = UnsafeRawBufferPointer(rebasing: decoded[0..<n])
            if config.recordAudio { report.receivedAudio.append(contentsOf: bytes) }
            if config.probe != .none { probeReceived(bytes, now: now) }
            queuedUntil = max(queuedUntil, now) + UInt64(n) * 125_000 // 8 bytes per ms
        } else if s.equals(ev, "mark") {
            guard keys == 3, let m = s.member("mark", of: root), let name = s.member("name", of: m).flatMap({ s.string($0) }), !name.isEmpty else {
                violation("mark shape")
                return
            }
            report.marksReceived += 1
            pendingMarks.append((name, max(queuedUntil, now)))
            schedule()
        } else if s.equals(ev, "clear") {
            guard keys == 2 else { violation("clear shape"); return }
            report.clears += 1
            report.clearTimes.append(now)
            queuedUntil = now
            // Twilio returns every pending mark at once on clear (§7).
            for i in pendingMarks.indices { pendingMarks[i].due = now }
            echoMarks(now: now)
        } else {
            violation("unknown event \(s.string(ev) ?? "")")
        }
    }

    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        report.closeCode = code.rawValue
        report.closeReason = reason
        end()
    }

    func violation(_ what: String) {
        report.protocolViolations += 1
        if report.violationSamples.count < 5 { report.violationSamples.append(what) }
    }

    func echoMarks(now: UInt64) {
        guard let connection else { return }
        while let first = pendingMarks.first, first.due <= now + 200_000 {
            pendingMarks.removeFirst()
            sequence += 1
            connection.send(text: "{\"event\":\"mark\",\"sequenceNumber\":\"\(sequence)\",\"streamSid\":\"\(config.streamSID)\",\"mark\":{\"name\":\(JSONString.quote(first.name))}}")
            report.marksEchoed += 1
        }
    }

    func schedule() {
        guard !finished else { return }
        var next = min(deadline, config.hangUp ? endAt : .max, closeAt)
        if frameIndex < totalFrames || (config.silenceAfterAudio && !stopped) { next = min(next, nextFrameAt) }
        if let m = pendingMarks.first { next = min(next, m.due) }
        timer?.schedule(at: next)
    }

    func tick() {
        guard !finished else { return }
        let now = Self.now()
        if now >= closeAt, let connection {
            closeAt = .max
            connection.close(.normal, reason: "call ended")
        }
        if now >= deadline { hangUp(); return }
        guard let connection, report.connected else { schedule(); return }
        echoMarks(now: now)
        while frameIndex < totalFrames && nextFrameAt <= now + 200_000 {
            if now > nextFrameAt + 5_000_000 { report.lateSends += 1 }
            let t = frameIndex * 20
            while dtmfIndex < config.dtmf.count && config.dtmf[dtmfIndex].atMillis <= t {
                sequence += 1
                connection.send(text: "{\"event\":\"dtmf\",\"streamSid\":\"\(config.streamSID)\",\"sequenceNumber\":\"\(sequence)\",\"dtmf\":{\"track\":\"inbound_track\",\"digit\":\(JSONString.quote(config.dtmf[dtmfIndex].digit))}}")
                dtmfIndex += 1
            }
            if !config.mediaGaps.contains(where: { $0.contains(t) }) { sendFrame(connection, index: frameIndex) }
            frameIndex += 1
            nextFrameAt += 20_000_000
        }
        if frameIndex >= totalFrames && endAt == .max {
            endAt = now + UInt64(config.listenAfterMillis) * 1_000_000
        }
        // The line stays open after the audio: silence frames on the same clock until the end (until the far end
        // hangs up, when this caller does not).
        let silenceUntil = config.hangUp ? endAt : UInt64.max
        while frameIndex >= totalFrames && config.silenceAfterAudio && !stopped && nextFrameAt <= min(now + 200_000, silenceUntil) {
            sendFrame(connection, index: -1)
            nextFrameAt += 20_000_000
            silenceFrames += 1
        }
        if now >= endAt && config.hangUp { hangUp(); return }
        schedule()
    }

    /// Sends frame `index` of the audio (-1: a silence frame after it).
    func sendFrame(_ connection: WebSocketConnection, index: Int) {
        let audio = config.audio
        let n = index >= 0 ? index : totalFrames + silenceFrames
        if config.probe != .none {
            frame.initializeMemory(as: UInt8.self, repeating: MuLaw.silence)
            probeSend(index: n)
        } else {
            for i in 0..<160 {
                frame[i] = audio.isEmpty || index < 0 ? MuLaw.silence : audio[(index * 160 + i) % audio.count]
            }
        }
        sequence += 1
        message.reset()
        message.append("{\"event\":\"media\",\"sequenceNumber\":\"")
        message.append(decimal: sequence)
        message.append("\",\"media\":{\"track\":\"inbound\",\"chunk\":\"")
        message.append(decimal: Int64(n + 1))
        message.append("\",\"timestamp\":\"")
        message.append(decimal: Int64(n * 20))
        message.append("\",\"payload\":\"")
        message.appendBase64(UnsafeRawBufferPointer(frame))
        message.append("\"},\"streamSid\":\"")
        message.append(config.streamSID)
        message.append("\"}")
        connection.send(textBytes: message.bytes)
        report.framesSent += 1
        report.lastFrameAt = Self.now()
        if config.recordAudio { report.sentAudio.append(contentsOf: UnsafeRawBufferPointer(frame)) }
    }

    // MARK: Latency probe

    func probeSend(index n: Int) {
        switch config.probe {
        case .sequence:
            SequenceProbe.write(into: frame, sequence: UInt32(n), sentAt: Self.now())
            report.probe.lastSequenceSent = UInt32(n)
        case .clicks:
            if n % 5 == 0, let registry = config.probeRegistry {
                for (i, code) in ProbeRegistry.clickCodes.enumerated() { frame[ProbeRegistry.clickStart + i] = code }
                if probeCall == nil { probeCall = registry.call(config.callSID) }
                registry.clickSent(probeCall!, at: Self.now())
            }
        case .none: break
        }
    }

    func probeReceived(_ bytes: UnsafeRawBufferPointer, now: UInt64) {
        switch config.probe {
        case .sequence:
            guard let h = SequenceProbe.read(bytes) else { return }
            let seq = Int(h.sequence)
            if report.probe.seen.isEmpty { report.probe.reserve(totalFrames + config.listenAfterMillis / 20 + 64) }
            if seq < report.probe.seen.count {
                if report.probe.seen[seq] { report.probe.duplicates += 1; return }
                report.probe.seen[seq] = true
            }
            if seq < highestSequence { report.probe.reordered += 1 }
            highestSequence = max(highestSequence, seq)
            report.probe.distinct += 1
            report.probe.rtt.append(UInt32(clamping: now &- h.sentAt))
            if h.agentAt > h.sentAt && h.agentAt <= now {
                report.probe.up.append(UInt32(clamping: h.agentAt - h.sentAt))
                report.probe.down.append(UInt32(clamping: now - h.agentAt))
            }
        case .clicks:
            guard ProbeRegistry.hasClick(muLaw: bytes), let registry = config.probeRegistry, let call = probeCall,
                  let r = registry.clickReturned(call, at: now) else { return }
            report.probe.rtt.append(UInt32(clamping: r.rtt))
            if let down = r.down {
                report.probe.down.append(UInt32(clamping: down))
                report.probe.up.append(UInt32(clamping: r.rtt - down))
            }
        case .none: break
        }
    }

    /// The caller hangs up: `stop`, then close 1000 a moment later (what Twilio does when the call ends). The pause
    /// lets the gateway read `stop` before the socket goes: closing at once with the gateway's media still arriving
    /// can make the kernel reset the connection and drop `stop` on the way.
    func hangUp() {
        guard !stopped, let connection else { end(); return }
        stopped = true
        sequence += 1
        connection.send(text: "{\"event\":\"stop\",\"sequenceNumber\":\"\(sequence)\",\"streamSid\":\"\(config.streamSID)\",\"stop\":{\"accountSid\":\"\(config.accountSID)\",\"callSid\":\"\(config.callSID)\"}}")
        closeAt = Self.now() + 100_000_000
        // The close callback ends the run; give up waiting after 3 s.
        deadline = Self.now() + 3_000_000_000
        endAt = .max
        totalFrames = frameIndex
        timer?.schedule(at: closeAt)
    }

    /// Twilio's REST API was asked to end this call.
    func remoteHangUp() {
        report.hungUpByAPI = true
        hangUp()
    }

    func end() {
        guard !finished else { return }
        if !stopped, let connection, connection.isOpen { stopped = true; connection.close(.normal) }
        finished = true
        report.endedAt = Self.now()
        timer?.invalidate()
        connection = nil
        done.resume(report)
    }
}

@available(*, unavailable)
extension CallerSession: Sendable {}
