// One call: the Twilio leg (server WebSocket) and the agent leg (client WebSocket), both on the event loop that
// accepted the Twilio socket, so nothing here locks. Per-frame work (media in, audio out, pacing, marks) uses
// buffers allocated when the call starts and reusable timers; events, logs and REST calls happen per call or per
// agent turn, never per frame.
//
// Lifecycle (shared/protocols/twilio-media-streams.md §9, elevenlabs-convai.md §8):
//   upgrade (signature checked) -> `connected` -> `start` (format, tenant, token checked) -> agent leg opens
//   -> metadata (formats) -> bridging -> one of:
//   caller hangs up (`stop` / close)        -> close the agent leg -> call.completed
//   agent ends (close 1000)                 -> let the goodbye play, final mark, REST hang-up -> call.completed
//   agent fails / unreachable / idle        -> fallback prompt, final mark, REST hang-up -> call.failed
import AudioCodecs
import AudioCore
import Events
import Foundation
import HTTPClient
import Logging
import Signing
import Transport
import WireFormats

final class CallSession: WebSocketHandler {
    // MARK: Given
    let bridge: MediaBridge
    let loop: EventLoop
    let signedTenants: [String]
    let settings: BridgeSettings
    var logger: Logger

    // MARK: Owned (allocated at accept or at `start`)
    var twilio: WebSocketConnection?
    var agent: WebSocketConnection?
    let scratch: LoopScratch
    let inFrame = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
    let silenceFrame = UnsafeMutableRawBufferPointer.allocate(byteCount: 160, alignment: 16)
    let agentMessage = JSONMessageBuffer(capacity: 4096)
    var writer: TwilioOutboundWriter?
    var streamSIDBytes: [UInt8] = []
    var preAgent: FrameRing
    var outRing: FrameRing
    /// mu-law bytes of the frame being assembled toward Twilio (160 when full).
    let tail = UnsafeMutableRawBufferPointer.allocate(byteCount: 160, alignment: 16)
    var tailCount = 0
    var tailTag: Int64 = 0
    /// Agent-format bytes of the 20 ms frame being assembled before transcoding.
    var agentFrame = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 16)
    var agentFrameCount = 0
    var agentFrameBytes = 0
    var inboundPipeline: TranscodePipeline?
    var outboundPipeline: TranscodePipeline?
    var uplinkTimer: LoopTimer?
    var playoutTimer: LoopTimer?
    var houseTimer: LoopTimer?

    // MARK: State
    enum TwilioPhase { case awaitingConnected, awaitingStart, streaming, ended }
    enum AgentPhase { case idle, fetchingURL, connecting, awaitingMetadata, ready, closed }
    enum Ending: Equatable { case none, playingOut, awaitingFinalMark, hangingUp, closing }
    var twilioPhase = TwilioPhase.awaitingConnected
    var agentPhase = AgentPhase.idle
    var ending = Ending.none
    var start: TwilioStart?
    var tenant: BridgeTenant?
    var callID = ""
    var agentID = ""
    var conversationID: String?
    var stage: InboundJitterStage
    var pacer: PlayoutPacer
    var ledger = PlaybackLedger()
    var lastSentTag: Int64?
    var lastPushedTag: Int64?
    var interruptedEventID: Int64 = -1
    var ringEmptySince: UInt64 = 0
    var finalMarkNumber: Int64 = -1
    var outcomeFailure: String?
    var endReason: String?
    var agentErrorType: String?
    var vadSpeaking = false
    var pendingDigits: [String] = []
    var finished = false
    var stopReceived = false
    // Deadlines (monotonic ns; 0 = none).
    var openedAt: UInt64 = 0
    var startedAt: UInt64 = 0
    var startedWallMillis: Int64 = 0
    var twilioStartDeadline: UInt64 = 0
    var agentStartDeadline: UInt64 = 0
    var finalMarkDeadline: UInt64 = 0
    var closeDeadline: UInt64 = 0
    var lastTwilioMessage: UInt64 = 0
    var lastAgentMessage: UInt64 = 0
    var nextStatsAt: UInt64 = 0
    var agentOpenedAt: UInt64 = 0
    var stats = CallStats()

    static let fallbackTag: Int64 = .max - 1

    init(bridge: MediaBridge, loop: EventLoop, signedTenants: [String]) {
        self.bridge = bridge
        self.loop = loop
        self.signedTenants = signedTenants
        settings = bridge.settings
        logger = bridge.logger
        scratch = bridge.scratch(for: loop)
        preAgent = FrameRing(frameBytes: 160, capacity: max(1, settings.preAgentBufferMillis / 20))
        // 1 s to start; bursts double it up to the bound (agent audio arrives faster than real time).
        outRing = FrameRing(frameBytes: 160, capacity: 64, maxCapacity: max(64, settings.outboundBufferMillis / 20))
        stage = InboundJitterStage(stallAllowanceMillis: settings.inboundStallMillis)
        pacer = PlayoutPacer(maxLeadMillis: settings.maxLeadMillis)
        silenceFrame.initializeMemory(as: UInt8.self, repeating: MuLaw.silence)
    }

    deinit {
        inFrame.deallocate()
        silenceFrame.deallocate()
        tail.deallocate()
        agentFrame.deallocate()
    }

    static func now() -> UInt64 { EventLoop.monotonicNanos() }

    // MARK: - WebSocketHandler (both legs)

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        if connection === agent { agentOpened(); return }
        twilio = connection
        let now = Self.now()
        openedAt = now
        lastTwilioMessage = now
        twilioStartDeadline = now + UInt64(settings.twilioStartTimeoutMillis) * 1_000_000
        bridge.counters.activeCalls.add(1, ordering: .relaxed)
        uplinkTimer = loop.makeTimer { self.uplinkTick() } // the three are released by invalidate() in finish()
        playoutTimer = loop.makeTimer { self.playoutTick() }
        houseTimer = loop.makeTimer { self.housekeeping() }
        houseTimer?.schedule(at: now + 250_000_000)
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        if connection === agent {
            agentMessage(message)
        } else {
            twilioMessage(message)
        }
    }

    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        if connection === agent {
            agentClosed(code: code, reason: reason)
        } else if connection === twilio {
            twilioClosed(code: code)
        }
    }

    // MARK: - Twilio leg

    func twilioMessage(_ message: WebSocketMessage) {
        guard twilioPhase != .ended else { return }
        let now = Self.now()
        lastTwilioMessage = now
        guard message.kind == .text else {
            refuseTwilio(.unsupportedData, "binary frames are not part of the Media Streams protocol")
            return
        }
        let scanner = JSONScanner(message.bytes)
        var m = TwilioInboundMessage()
        guard m.parse(scanner) else {
            refuseTwilio(twilioPhase == .streaming ? .invalidPayload : .policyViolation, "message is not a JSON object with an event")
            return
        }
        switch twilioPhase {
        case .awaitingConnected:
            guard m.event == .connected else { refuseTwilio(.policyViolation, "expected connected as the first message"); return }
            twilioPhase = .awaitingStart
        case .awaitingStart:
            guard m.event == .start else { refuseTwilio(.policyViolation, "expected start after connected"); return }
            handleStart(m, scanner, now: now)
        case .streaming:
            if let sid = m.streamSID, !sameBytes(scanner.raw(sid), streamSIDBytes) {
                refuseTwilio(.policyViolation, "streamSid does not match the stream")
                return
            }
            switch m.event {
            case .media: handleMedia(m, scanner, now: now)
            case .mark: handleMarkEcho(m, scanner, now: now)
            case .dtmf: handleDTMF(m, scanner)
            case .stop:
                stopReceived = true
                endReason = endReason ?? "caller_hangup"
                twilioPhase = .ended
                closeAgent()
                finish()
            case .connected, .start: refuseTwilio(.policyViolation, "unexpected \(m.event == .start ? "start" : "connected") while streaming")
            case .unknown: stats.unknownTwilioMessages += 1
            }
        case .ended: break
        }
    }

    private func sameBytes(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<b.count where a[i] != b[i] { return false }
        return true
    }

    /// Closes the Twilio socket for a protocol violation. Before `start` there is no call to report; after it the
    /// call fails.
    func refuseTwilio(_ code: WebSocketCloseCode, _ reason: String) {
        stats.protocolErrors += 1
        logger.warning("twilio protocol violation", metadata: ["ws.close_code": "\(code)", "reason": "\(reason)"])
        let wasStreaming = twilioPhase == .streaming
        twilioPhase = .ended
        twilio?.close(code, reason: reason)
        if wasStreaming {
            outcomeFailure = outcomeFailure ?? "twilio_protocol_error"
            endReason = reason
            closeAgent()
            finish()
        } else {
            bridge.counters.streamsRefused.add(1, ordering: .relaxed)
        }
    }

    func handleStart(_ m: TwilioInboundMessage, _ scanner: JSONScanner, now: UInt64) {
        let s: TwilioStart
        do { s = try TwilioStart(m, scanner) } catch { refuseTwilio(.policyViolation, error.description); return }
        guard s.encoding == "audio/x-mulaw", s.sampleRate == 8000, s.channels == 1 else {
            refuseTwilio(.policyViolation, "unsupported mediaFormat \(s.encoding)/\(s.sampleRate)/\(s.channels): only audio/x-mulaw 8000 Hz mono")
            return
        }
        // Tenant: the one named in the parameters, among those whose token signed the upgrade.
        let p = s.customParameters
        let candidates = signedTenants.compactMap { bridge.tenant(id: $0) }
        guard let t = p["tenant"].flatMap({ name in candidates.first { $0.id == name } }) ?? (candidates.count == 1 && p["tenant"] == nil ? candidates[0] : nil) else {
            refuseTwilio(.policyViolation, "unknown tenant parameter")
            return
        }
        guard let token = p["token"], Signing.constantTimeEqual(token, MediaBridge.callToken(tenant: t, callSID: s.callSID)) else {
            refuseTwilio(.policyViolation, "missing or invalid call token parameter")
            return
        }
        guard let agent = p["agent"].flatMap({ $0.isEmpty ? nil : $0 }) ?? t.agent(forCalled: p["to"] ?? "") else {
            refuseTwilio(.policyViolation, "no agent configured for this call")
            return
        }
        start = s
        tenant = t
        agentID = agent
        callID = p["call_id"].flatMap { TwilioStart.isPlainID($0) ? $0 : nil } ?? PatchbayEvent.prefixedID("call_")
        streamSIDBytes = Array(s.streamSID.utf8)
        writer = TwilioOutboundWriter(streamSID: s.streamSID)
        twilioPhase = .streaming
        startedAt = now
        startedWallMillis = PatchbayEvent.nowMillis()
        nextStatsAt = now + UInt64(settings.statsIntervalMillis) * 1_000_000
        logger[metadataKey: "call.id"] = "\(callID)"
        logger[metadataKey: "tenant"] = "\(t.id)"
        logger.info("call started", metadata: ["twilio.call_sid": "\(s.callSID)", "agent": "\(agent)"])
        bridge.counters.callsStarted.add(1, ordering: .relaxed)
        publish("call.started", [
            ("twilio_call_sid", .string(s.callSID)), ("twilio_stream_sid", .string(s.streamSID)),
            ("from", .string(p["from"] ?? "")), ("to", .string(p["to"] ?? "")), ("agent_id", .string(agent)),
        ])
        startAgent()
    }

    func handleMedia(_ m: TwilioInboundMessage, _ scanner: JSONScanner, now: UInt64) {
        guard let payload = m.mediaPayload, m.mediaTrackIsInbound,
              let n = Base64.decode(scanner.raw(payload), into: inFrame), n > 0 else {
            stats.invalidMedia += 1
            return
        }
        stats.framesFromCaller += 1
        let nowMillis = Int64(now / 1_000_000)
        let ts = m.mediaTimestampMillis >= 0 ? m.mediaTimestampMillis : Int64(stats.framesFromCaller) * 20
        switch stage.arrive(timestampMillis: ts, nowMillis: nowMillis) {
        case .drop: return
        case .forward(let silence):
            for _ in 0..<silence { toAgent(UnsafeRawBufferPointer(silenceFrame), silence: true) }
            toAgent(UnsafeRawBufferPointer(rebasing: inFrame[0..<n]), silence: false)
        }
        // The stall timer only moves later as frames arrive: arm it once and let it re-arm itself when it fires,
        // rather than touching the timer heap for every frame.
        if let t = uplinkTimer, !t.isScheduled { t.schedule(at: UInt64(max(0, stage.nextTickMillis)) * 1_000_000) }
    }

    /// The clock ran with no caller audio: keep the agent fed with silence at real-time pace.
    func uplinkTick() {
        guard twilioPhase == .streaming else { return }
        let frames = stage.tick(nowMillis: Int64(Self.now() / 1_000_000))
        for _ in 0..<frames { toAgent(UnsafeRawBufferPointer(silenceFrame), silence: true) }
        uplinkTimer?.schedule(at: UInt64(max(0, stage.nextTickMillis)) * 1_000_000)
    }

    /// One 20 ms caller frame (mu-law 8 kHz) toward the agent.
    func toAgent(_ frame: UnsafeRawBufferPointer, silence: Bool) {
        switch agentPhase {
        case .ready:
            guard let agent else { return }
            let out = inboundPipeline?.process(frame) ?? frame
            guard out.count > 0 else { return }
            if agent.send(textBytes: AgentClientMessage.userAudioChunk(out, into: agentMessage)) == .dropped { stats.framesDroppedToAgent += 1 }
            if silence { stats.silenceToAgent += 1 } else { stats.framesToAgent += 1 }
        case .idle, .fetchingURL, .connecting, .awaitingMetadata:
            guard frame.count == 160 else { return }
            if preAgent.isFull { preAgent.removeFirst(); stats.framesDroppedToAgent += 1 }
            _ = preAgent.tryPush(frame, tag: silence ? 1 : 0)
        case .closed:
            break
        }
    }

    func handleMarkEcho(_ m: TwilioInboundMessage, _ scanner: JSONScanner, now: UInt64) {
        guard let name = m.markName, let writer, let number = writer.markNumber(scanner, name) else { stats.unknownMarks += 1; return }
        switch ledger.markEchoed(number) {
        case .played:
            ledger.finishPlayed(waiting: (outRing.firstTag, tailCount > 0 ? tailTag : (outRing.isEmpty ? nil : lastPushedTag)))
            publishTranscripts()
        case .cleared, .unknown: break
        }
        if finalMarkNumber >= 0 && number >= finalMarkNumber && ending == .awaitingFinalMark { hangUp() }
    }

    func handleDTMF(_ m: TwilioInboundMessage, _ scanner: JSONScanner) {
        guard let span = m.dtmfDigit, let digit = scanner.string(span), digit.count == 1,
              "0123456789*#ABCDabcd".contains(digit) else { stats.invalidMedia += 1; return }
        stats.dtmf += 1
        // No DTMF message exists in the ConvAI protocol: the reference advises a user message (elevenlabs-convai.md §9).
        // Digits pressed while the agent leg opens wait for it (a few at most).
        if agentPhase == .ready, let agent {
            agent.send(text: AgentClientMessage.userMessage("[keypad] \(digit)"))
        } else if agentPhase != .closed && pendingDigits.count < 32 {
            pendingDigits.append(digit)
        }
        publish("call.dtmf", [("digit", .string(digit))])
    }

    func twilioClosed(code: WebSocketCloseCode) {
        twilio = nil
        if twilioPhase == .streaming || (twilioPhase == .ended && start != nil) {
            if endReason == nil { endReason = stopReceived ? "caller_hangup" : (code == .normal ? "twilio_closed" : "twilio_disconnected_\(code.rawValue)") }
            twilioPhase = .ended
            closeAgent()
            finish()
        } else {
            twilioPhase = .ended
            finish()
        }
    }

    // MARK: - Housekeeping (deadlines, idle, stats): a 250 ms tick per call (deadlines are seconds; finer costs CPU)

    func housekeeping() {
        let now = Self.now()
        if twilioPhase == .awaitingConnected || twilioPhase == .awaitingStart, now >= twilioStartDeadline {
            refuseTwilio(.policyViolation, "no start within \(settings.twilioStartTimeoutMillis) ms")
        }
        if twilioPhase == .streaming {
            if now - lastTwilioMessage > UInt64(settings.twilioIdleTimeoutMillis) * 1_000_000 {
                endReason = "twilio_idle"
                twilioPhase = .ended
                twilio?.close(.normal, reason: "no messages from Twilio")
                closeAgent()
                finish()
            }
            if agentStartDeadline > 0, now >= agentStartDeadline, agentPhase != .ready, agentPhase != .closed {
                agentFailed("agent_start_timeout")
            }
            if agentPhase == .ready, now - lastAgentMessage > UInt64(settings.agentIdleTimeoutMillis) * 1_000_000 {
                agentFailed("agent_idle")
            }
            if finalMarkDeadline > 0, now >= finalMarkDeadline, ending == .awaitingFinalMark { hangUp() }
            if now >= nextStatsAt {
                nextStatsAt += UInt64(settings.statsIntervalMillis) * 1_000_000
                publish("call.stats", statsJSON(now: now))
            }
        }
        if closeDeadline > 0, now >= closeDeadline, let twilio {
            closeDeadline = 0
            twilio.close(.normal, reason: "call ended")
        }
        if !finished { houseTimer?.schedule(at: (houseTimer?.deadline ?? now) + 250_000_000) }
    }

    // MARK: - Ending

    /// Closes the agent leg (normal closure) if it is open or opening.
    func closeAgent() {
        guard agentPhase != .closed else { return }
        agentPhase = .closed
        agent?.close(.normal, reason: "call ended")
    }

    /// Publishes the final event once both legs are done with; releases timers.
    func finish() {
        guard !finished, twilioPhase == .ended else { return }
        finished = true
        uplinkTimer?.invalidate()
        playoutTimer?.invalidate()
        houseTimer?.invalidate()
        bridge.counters.activeCalls.subtract(1, ordering: .relaxed)
        guard start != nil else { return }
        ledger.finishAll()
        publishTranscripts()
        let now = Self.now()
        var data = statsJSON(now: now)
        data.insert(("reason", .string(outcomeFailure ?? endReason ?? "ended")), at: 0)
        if let e = agentErrorType { data.append(("agent_error_type", .string(e))) }
        let failed = outcomeFailure != nil
        if failed { bridge.counters.callsFailed.add(1, ordering: .relaxed) } else { bridge.counters.callsCompleted.add(1, ordering: .relaxed) }
        bridge.counters.framesToAgent.add(stats.framesToAgent, ordering: .relaxed)
        bridge.counters.framesToCaller.add(Int(ledger.framesSent), ordering: .relaxed)
        bridge.counters.underruns.add(pacer.underruns, ordering: .relaxed)
        logger.info(failed ? "call failed" : "call completed", metadata: ["reason": "\(outcomeFailure ?? endReason ?? "ended")",
                                                                           "duration_ms": "\((now - startedAt) / 1_000_000)"])
        publish(failed ? "call.failed" : "call.completed", data)
    }

    // MARK: - Events

    func publish(_ type: String, _ data: [(String, JSONValue)]) {
        guard let tenant else { return }
        bridge.events.publish(PatchbayEvent(type: type, tenant: tenant.id, occurredAtMillis: PatchbayEvent.nowMillis(),
                                            conversationID: callID, callID: callID, data: .object(data)))
    }

    func statsJSON(now: UInt64) -> [(String, JSONValue)] {
        let s = stage.stats
        return [
            ("duration_ms", .int(Int64((now - startedAt) / 1_000_000))),
            ("agent_conversation_id", conversationID.map { .string($0) } ?? .null),
            ("formats", .object([("agent_input", .string(inboundPipeline?.target.elevenLabsName ?? "ulaw_8000")),
                                 ("agent_output", .string(outboundPipeline?.source.elevenLabsName ?? "ulaw_8000")),
                                 ("transcoding", .bool(inboundPipeline != nil || outboundPipeline != nil))])),
            ("caller_to_agent", .object([
                ("frames_received", .int(Int64(stats.framesFromCaller))), ("frames_sent", .int(Int64(stats.framesToAgent))),
                ("silence_frames", .int(Int64(stats.silenceToAgent))), ("gap_fill_frames", .int(Int64(s.gapFrames))),
                ("stall_fill_frames", .int(Int64(s.stallFrames))), ("late", .int(Int64(s.late))),
                ("duplicates", .int(Int64(s.duplicates))), ("dropped", .int(Int64(stats.framesDroppedToAgent))),
                ("jitter_ms", .double(s.jitterMillis)),
            ])),
            ("agent_to_caller", .object([
                ("frames_received", .int(Int64(stats.framesFromAgent))), ("frames_sent", .int(ledger.framesSent)),
                ("stale_discarded", .int(Int64(stats.staleFrames))), ("overflow_dropped", .int(Int64(stats.overflowFrames))),
                ("cleared_frames", .int(Int64(stats.clearedFrames))), ("underruns", .int(Int64(pacer.underruns))),
                ("gap_ms", .int(Int64(pacer.gapNanos / 1_000_000))), ("longest_gap_ms", .int(Int64(pacer.longestGapNanos / 1_000_000))),
                ("marks_sent", .int(Int64(ledger.marksSent))), ("marks_played", .int(Int64(ledger.marksPlayed))),
                ("marks_cleared", .int(Int64(ledger.marksCleared))),
            ])),
            ("interruptions", .int(Int64(stats.interruptions))),
            ("max_clear_latency_us", .int(Int64(stats.maxClearLatencyNanos / 1000))),
            ("dtmf", .int(Int64(stats.dtmf))),
            ("agent_ping_ms", stats.agentPingMillis.map { .int($0) } ?? .null),
            ("agent_start_ms", stats.agentStartMillis.map { .int($0) } ?? .null),
            ("agent_first_audio_ms", stats.agentFirstAudioMillis.map { .int($0) } ?? .null),
            ("protocol_errors", .int(Int64(stats.protocolErrors))),
        ]
    }
}

/// Per-call counters (flushed in `call.stats` and the final event; never a lock per frame).
struct CallStats {
    var framesFromCaller = 0, framesToAgent = 0, silenceToAgent = 0, framesDroppedToAgent = 0
    var framesFromAgent = 0, staleFrames = 0, overflowFrames = 0, clearedFrames = 0
    var interruptions = 0, maxClearLatencyNanos: UInt64 = 0, dtmf = 0
    var unknownTwilioMessages = 0, unknownMarks = 0, invalidMedia = 0, protocolErrors = 0
    var agentPingMillis: Int64?
    var agentFirstAudioMillis: Int64?
    /// From `start` to the agent's metadata (signed URL, connect, initiation).
    var agentStartMillis: Int64?
}

@available(*, unavailable)
extension CallSession: Sendable {}
