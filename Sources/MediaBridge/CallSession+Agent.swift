// The agent leg of a call: signed URL, connect, initiation data, metadata and formats, every server event
// (elevenlabs-convai.md §2-§9), and the agent's end or failure.
import AudioCodecs
import AudioCore
import Events
import Foundation
import HTTPClient
import Transport
import WireFormats

extension CallSession {
    func startAgent() {
        guard let tenant else { return }
        agentStartDeadline = Self.now() + UInt64(settings.agentStartTimeoutMillis) * 1_000_000
        if let key = tenant.elevenLabsAPIKey, !key.isEmpty {
            // Private agent: a signed URL first, so the key never travels in a socket URL (§1).
            agentPhase = .fetchingURL
            let request = HTTPClientRequest(url: bridge.endpoints.signedURLRequestURL(agentID: agentID), headers: [("xi-api-key", key)],
                                            timeout: .milliseconds(settings.agentStartTimeoutMillis))
            let http = bridge.http, loop = self.loop
            let box = LoopBound(self)
            Task {
                let outcome = await MediaBridge.fetchSignedURL(http: http, request: request)
                loop.execute { box.value.signedURLArrived(outcome) }
            }
        } else {
            connectAgent(url: bridge.endpoints.conversationURL(agentID: agentID))
        }
    }

    func signedURLArrived(_ outcome: Result<String, AgentStartError>) {
        guard agentPhase == .fetchingURL, twilioPhase == .streaming else { return }
        switch outcome {
        case .success(let url): connectAgent(url: url)
        case .failure(let why):
            logger.warning("agent signed URL failed", metadata: ["error": "\(why)"])
            agentFailed("agent_unreachable")
        }
    }

    func connectAgent(url: String) {
        agentPhase = .connecting
        agentOpenedAt = Self.now()
        let c = loop.connectWebSocket(url: url, handler: self)
        // Agent audio events can carry seconds of audio: accept what decodes into the loop's 1 MiB scratch (32 s of
        // pcm_16000); larger closes 1009 rather than being cut.
        c.maxMessageBytes = LoopScratch.agentAudioBytes * 4 / 3 + 4096
        agent = c
    }

    func agentOpened() {
        guard agentPhase == .connecting, let agent, let start else { return }
        agentPhase = .awaitingMetadata
        lastAgentMessage = Self.now()
        // The initiation message must come first and carry the dynamic variables (§3.1).
        let p = start.customParameters
        var vars: [(String, String)] = [
            ("caller_number", p["from"] ?? ""), ("called_number", p["to"] ?? ""),
            ("twilio_call_sid", start.callSID), ("patchbay_call_id", callID), ("tenant", tenant?.id ?? ""),
        ]
        let reserved: Set<String> = ["tenant", "agent", "token", "call_id", "from", "to"]
        for key in p.keys.sorted() where !reserved.contains(key) && !key.hasPrefix("system__") { vars.append((key, p[key]!)) }
        agent.send(text: AgentClientMessage.initiation(dynamicVariables: vars))
    }

    func agentMessage(_ message: WebSocketMessage) {
        guard agentPhase != .closed, message.kind == .text else { return }
        let now = Self.now()
        lastAgentMessage = now
        let scanner = JSONScanner(message.bytes)
        guard let event = AgentServerEvent.parse(scanner) else { stats.protocolErrors += 1; return }
        switch event {
        case .audio(let payload, let eventID):
            agentAudio(scanner.raw(payload), eventID: eventID, now: now)
        case .ping(let eventID, let pingMillis):
            agent?.send(text: AgentClientMessage.pong(eventID: eventID))
            if let pingMillis { stats.agentPingMillis = pingMillis }
        case .conversationInitiationMetadata(let id, let output, let input):
            metadataArrived(conversationID: id, output: output, input: input)
        case .interruption(let eventID):
            interrupt(eventID: eventID, received: now)
        case .agentResponse(let text, let eventID):
            ledger.setText(text, eventID: eventID)
            publishTranscripts()
        case .agentResponseCorrection(_, let corrected, let eventID):
            ledger.setCorrection(corrected, eventID: eventID)
            publish("call.transcript", [("role", .string("agent")), ("text", .string(corrected)), ("event_id", .int(eventID)),
                                        ("corrected", .bool(true)), ("interrupted", .bool(true)),
                                        ("played_ms", .int(Int64(ledger.responses.last { $0.eventID == eventID }?.playedFrames ?? 0) * 20))])
        case .userTranscript(let text, let eventID):
            publish("call.transcript", [("role", .string("user")), ("text", .string(text)), ("event_id", .int(eventID))])
        case .tentativeUserTranscript:
            break
        case .vadScore(let score):
            if !vadSpeaking && score >= 0.8 || vadSpeaking && score <= 0.2 {
                vadSpeaking.toggle()
                publish("call.vad", [("speaking", .bool(vadSpeaking)), ("score", .double(score))])
            }
        case .clientToolCall(let name, let callID, let parameters, let eventID):
            // No client tools are registered with the bridge: answer at once so the agent does not wait (§9).
            agent?.send(text: AgentClientMessage.toolResult(callID: callID, result: "unknown client tool: \(name)", isError: true))
            publish("call.tool_call", [("tool_name", .string(name)), ("tool_call_id", .string(callID)),
                                       ("parameters", .raw(parameters)), ("event_id", .int(eventID)), ("result", .string("unknown_tool"))])
        case .agentToolResponse(let name, _, let isError):
            if name == "end_call" && !isError { endReason = "agent_ended" }
        case .error(let code, let type, let message):
            agentErrorType = type ?? "unknown"
            logger.warning("agent error event", metadata: ["code": "\(code ?? 0)", "error_type": "\(type ?? "")", "message": "\(message ?? "")"])
        case .other:
            break
        }
    }

    func metadataArrived(conversationID id: String, output: String, input: String) {
        guard agentPhase == .awaitingMetadata else { return }
        conversationID = id
        // Formats are fixed per agent: read them every call and never guess (§5).
        guard let inFormat = AudioFormat(elevenLabsName: input), let outFormat = AudioFormat(elevenLabsName: output),
              inFormat.encoding != .opus, outFormat.encoding != .opus else {
            logger.warning("agent audio format unsupported", metadata: ["input": "\(input)", "output": "\(output)"])
            agentFailed("unsupported_agent_format")
            return
        }
        do {
            inboundPipeline = inFormat == .twilioMuLaw ? nil : try TranscodePipeline(from: .twilioMuLaw, to: inFormat)
            outboundPipeline = outFormat == .twilioMuLaw ? nil : try TranscodePipeline(from: outFormat, to: .twilioMuLaw)
        } catch {
            agentFailed("unsupported_agent_format")
            return
        }
        agentFrameBytes = outFormat.bytesPerFrame ?? 160
        agentFrame.deallocate()
        agentFrame = .allocate(byteCount: agentFrameBytes, alignment: 16)
        agentFrameCount = 0
        agentPhase = .ready
        agentStartDeadline = 0
        stats.agentStartMillis = Int64((Self.now() - startedAt) / 1_000_000)
        for digit in pendingDigits { agent?.send(text: AgentClientMessage.userMessage("[keypad] \(digit)")) }
        pendingDigits = []
        // Caller audio that arrived while the agent leg opened goes now, in order.
        while let frame = preAgent.first {
            let silence = preAgent.firstTag == 1
            toAgent(frame, silence: silence)
            preAgent.removeFirst()
        }
    }

    // MARK: - Agent audio toward the caller

    func agentAudio(_ base64: UnsafeRawBufferPointer, eventID: Int64, now: UInt64) {
        guard agentPhase == .ready, ending == .none || ending == .playingOut else { return }
        if eventID >= 0 && eventID <= interruptedEventID { stats.staleFrames += 1; return } // §6 step 3
        guard let n = Base64.decode(base64, into: scratch.agentAudio) else { stats.protocolErrors += 1; return }
        if stats.agentFirstAudioMillis == nil { stats.agentFirstAudioMillis = Int64((now - agentOpenedAt) / 1_000_000) }
        let bytes = UnsafeRawBufferPointer(rebasing: scratch.agentAudio[0..<n])
        if let outboundPipeline {
            // Assemble whole 20 ms frames of the agent's format, transcode each.
            if agentFrameCount > 0 && tailTag != eventID { flushAgentFrame() }
            var i = 0
            while i < n {
                let take = min(agentFrameBytes - agentFrameCount, n - i)
                (agentFrame.baseAddress! + agentFrameCount).copyMemory(from: bytes.baseAddress! + i, byteCount: take)
                agentFrameCount += take
                i += take
                if agentFrameCount == agentFrameBytes {
                    agentFrameCount = 0
                    appendMuLaw(outboundPipeline.process(UnsafeRawBufferPointer(agentFrame)), tag: eventID)
                }
            }
        } else {
            appendMuLaw(bytes, tag: eventID)
        }
        pump(now: now)
    }

    /// Pads and transcodes a partial agent frame (end of a response).
    func flushAgentFrame() {
        guard let outboundPipeline, agentFrameCount > 0 else { return }
        (agentFrame.baseAddress! + agentFrameCount).initializeMemory(as: UInt8.self, repeating: 0, count: agentFrameBytes - agentFrameCount)
        agentFrameCount = 0
        appendMuLaw(outboundPipeline.process(UnsafeRawBufferPointer(agentFrame)), tag: tailTag)
    }

    /// Appends mu-law bytes of response `tag`, cutting them into 160-byte frames in the ring.
    func appendMuLaw(_ bytes: UnsafeRawBufferPointer, tag: Int64) {
        if tailCount > 0 && tailTag != tag { flushTail() }
        tailTag = tag
        var i = 0
        while i < bytes.count {
            let take = min(160 - tailCount, bytes.count - i)
            (tail.baseAddress! + tailCount).copyMemory(from: bytes.baseAddress! + i, byteCount: take)
            tailCount += take
            i += take
            if tailCount == 160 { pushTail() }
        }
    }

    /// Pads the partial frame with silence and queues it.
    func flushTail() {
        guard tailCount > 0 else { return }
        (tail.baseAddress! + tailCount).initializeMemory(as: UInt8.self, repeating: MuLaw.silence, count: 160 - tailCount)
        tailCount = 160
        pushTail()
    }

    private func pushTail() {
        tailCount = 0
        stats.framesFromAgent += 1
        ledger.frameReceived(eventID: tailTag)
        if outRing.isFull { outRing.grow() }
        if outRing.tryPush(UnsafeRawBufferPointer(tail), tag: tailTag) {
            lastPushedTag = tailTag
        } else {
            stats.overflowFrames += 1
        }
    }

    // MARK: - Pacing toward Twilio

    /// Sends what the playout clock allows now; arms the timer for the rest.
    func pump(now: UInt64) {
        guard let twilio, let writer, twilioPhase == .streaming else { return }
        let markEvery = Int64(max(1, settings.markIntervalMillis / 20))
        var sent = false
        while let tag = outRing.firstTag, let frame = outRing.first, pacer.canSend(now: now) {
            if let last = lastSentTag, last != tag, ledger.framesSinceLastMark > 0 { sendMark(twilio, writer) } // boundary
            twilio.send(textBytes: writer.media(frame))
            outRing.removeFirst()
            pacer.didSend(now: now, continuesResponse: lastSentTag == tag)
            ledger.frameSent(eventID: tag)
            lastSentTag = tag
            sent = true
            if ledger.framesSinceLastMark >= markEvery { sendMark(twilio, writer) }
        }
        if !outRing.isEmpty {
            playoutTimer?.schedule(at: pacer.nextSendTime)
        } else {
            if sent { ringEmptySince = now }
            // Nothing queued: after two frame times of quiet, close the response with a mark (and its last
            // partial frame), instead of a mark after every frame of a real-time stream.
            if tailCount > 0 || agentFrameCount > 0 || ledger.framesSinceLastMark > 0 || ending == .playingOut {
                playoutTimer?.schedule(at: ringEmptySince + 40_000_000)
            }
        }
    }

    func playoutTick() {
        let now = Self.now()
        pump(now: now)
        guard outRing.isEmpty, now >= ringEmptySince + 40_000_000 - 100_000, let twilio, let writer else { return }
        if agentFrameCount > 0 { flushAgentFrame() }
        if tailCount > 0 { flushTail(); pump(now: now); if !outRing.isEmpty { return } }
        if ledger.framesSinceLastMark > 0 { sendMark(twilio, writer) }
        if ending == .playingOut {
            // Everything is out: the final mark says when the caller has heard it.
            ending = .awaitingFinalMark
            finalMarkNumber = ledger.nextMarkNumber
            sendMark(twilio, writer, force: true)
            finalMarkDeadline = now + UInt64(settings.finalMarkTimeoutMillis + settings.maxLeadMillis) * 1_000_000
        }
    }

    func sendMark(_ twilio: WebSocketConnection, _ writer: TwilioOutboundWriter, force: Bool = false) {
        guard force || ledger.framesSinceLastMark > 0, let n = ledger.markSent() else { return }
        twilio.send(textBytes: writer.mark(number: n))
    }

    // MARK: - Barge-in

    /// `interruption` (§6): `clear` first, then drop everything queued of the interrupted response.
    func interrupt(eventID: Int64, received: UInt64) {
        if let twilio, let writer, twilioPhase == .streaming {
            twilio.send(textBytes: writer.clear())
            let latency = Self.now() - received
            stats.maxClearLatencyNanos = max(stats.maxClearLatencyNanos, latency)
        }
        stats.interruptions += 1
        bridge.counters.interruptions.add(1, ordering: .relaxed)
        let dropped = outRing.removeAll() + (tailCount > 0 ? 1 : 0)
        stats.clearedFrames += dropped
        tailCount = 0
        agentFrameCount = 0
        lastSentTag = nil
        interruptedEventID = max(interruptedEventID, eventID)
        let played = ledger.responses.last { $0.eventID == eventID }?.playedFrames ?? 0
        ledger.interrupted(eventID: eventID)
        ledger.cleared()
        pacer.cleared(now: received)
        publish("call.interrupted", [("event_id", .int(eventID)), ("played_ms", .int(Int64(played) * 20)),
                                     ("dropped_ms", .int(Int64(dropped) * 20))])
        publishTranscripts()
    }

    /// Agent transcripts go out when their playback is over, with how much the caller heard (`played_ms`).
    func publishTranscripts() {
        for r in ledger.unpublishedFinished() {
            ledger.markPublished(eventID: r.eventID)
            publish("call.transcript", [
                ("role", .string("agent")), ("text", .string(r.correctedText ?? r.text ?? "")), ("event_id", .int(r.eventID)),
                ("audio_ms", .int(Int64(r.receivedFrames) * 20)), ("played_ms", .int(Int64(r.playedFrames) * 20)),
                ("interrupted", .bool(r.interrupted)),
            ])
        }
    }

    // MARK: - Agent end and failure

    func agentClosed(code: WebSocketCloseCode, reason: String) {
        let phase = agentPhase
        agent = nil
        agentPhase = .closed
        guard twilioPhase == .streaming else { finish(); return }
        if phase == .ready && code == .normal {
            // The agent ended the conversation: let the goodbye play, then hang up (§8).
            endReason = endReason ?? "agent_ended"
            ending = .playingOut
            pump(now: Self.now())
            playoutTimer?.schedule(at: Self.now())
        } else if phase != .closed {
            logger.warning("agent leg closed", metadata: ["ws.close_code": "\(code)", "reason": "\(reason)"])
            playFallback(reason: phase == .ready ? "agent_closed_\(code.rawValue)" : "agent_unreachable")
        }
    }

    /// The agent leg failed or timed out: close it, then the fallback.
    func agentFailed(_ reason: String) {
        if let agent { agent.close(.normal, reason: reason) }
        agent = nil
        agentPhase = .closed
        playFallback(reason: reason)
    }

    /// Plays the fallback prompt, then hangs up; the call ends as failed.
    func playFallback(reason: String) {
        guard ending == .none || ending == .playingOut else { return }
        outcomeFailure = outcomeFailure ?? reason
        agentStartDeadline = 0
        stats.clearedFrames += outRing.removeAll()
        tailCount = 0
        let prompt = settings.fallbackPrompt
        prompt.withUnsafeBytes { appendMuLaw($0, tag: Self.fallbackTag) }
        flushTail()
        ending = .playingOut
        let now = Self.now()
        pump(now: now)
        if outRing.isEmpty { playoutTimer?.schedule(at: now) }
    }

    /// Ends the call through Twilio's REST API (closing the stream would only continue the TwiML, §9).
    func hangUp() {
        guard ending != .hangingUp, ending != .closing else { return }
        ending = .hangingUp
        finalMarkDeadline = 0
        guard let tenant, let start, let sid = tenant.twilioAccountSID, let token = tenant.twilioAuthToken else {
            logger.warning("no Twilio credentials to hang up: closing the stream")
            ending = .closing
            twilio?.close(.normal, reason: "call ended")
            return
        }
        var base = settings.twilioAPIURL
        while base.hasSuffix("/") { base.removeLast() }
        let url = "\(base)/2010-04-01/Accounts/\(sid)/Calls/\(start.callSID).json"
        let auth = Data("\(sid):\(token)".utf8).base64EncodedString()
        let request = HTTPClientRequest(method: "POST", url: url,
                                        headers: [("Authorization", "Basic \(auth)"), ("Content-Type", "application/x-www-form-urlencoded")],
                                        body: Array("Status=completed".utf8), timeout: .seconds(10))
        let http = bridge.http, loop = self.loop, box = LoopBound(self)
        Task {
            let status: Int
            do { status = try await http.execute(request).status } catch { status = -1 }
            loop.execute { box.value.hungUp(status: status) }
        }
    }

    func hungUp(status: Int) {
        ending = .closing
        // 404 (code 20404): the call had already ended; not an error.
        if !(200..<300).contains(status) && status != 404 {
            logger.warning("Twilio hang-up failed: closing the stream", metadata: ["http.status": "\(status)"])
            twilio?.close(.normal, reason: "call ended")
        } else {
            // Twilio sends `stop` and closes; if it does not within 5 s, close from our side.
            closeDeadline = Self.now() + 5_000_000_000
        }
    }
}

extension MediaBridge {
    /// `GET …/get-signed-url` (elevenlabs-convai.md §1): the `signed_url` of a 200 answer.
    static func fetchSignedURL(http: HTTPClient, request: HTTPClientRequest) async -> Result<String, AgentStartError> {
        do {
            let response = try await http.execute(request)
            guard response.status == 200 else { return .failure(AgentStartError(description: "signed URL request answered \(response.status)")) }
            let url: String? = response.body.withUnsafeBytes { raw in
                let s = JSONScanner(raw)
                guard let root = s.rootObject(), let v = s.member("signed_url", of: root) else { return nil }
                return s.string(v)
            }
            guard let url, url.hasPrefix("ws://") || url.hasPrefix("wss://") else {
                return .failure(AgentStartError(description: "signed URL answer has no ws(s) signed_url"))
            }
            return .success(url)
        } catch {
            return .failure(AgentStartError(description: "signed URL request failed: \(error)"))
        }
    }
}

/// Why the agent leg could not start.
struct AgentStartError: Error, CustomStringConvertible {
    var description: String
}
