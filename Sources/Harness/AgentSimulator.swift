// `patchbay sim agent`: a local server that speaks the ElevenLabs Conversational AI protocol
// (shared/protocols/elevenlabs-convai.md), so the bridge can be tested and loaded without the real service.
// - echo mode: returns the caller's audio after a delay, in the agent's output format;
// - script mode: plays fixture responses faster than real time (as the service does), sends transcripts, sends
//   `interruption` when the caller speaks over a response, and can end the conversation.
// Both modes send `ping`s and check the `pong`s, insist on the initiation message first (1008 otherwise, like the
// service), and serve `GET /v1/convai/conversation/get-signed-url` for private agents.
import AudioCodecs
import AudioCore
import Foundation
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

/// What the agent simulator does.
public struct AgentSimulatorConfiguration: Sendable {
    public enum Mode: Sendable, Equatable { case echo, script }
    public var mode: Mode = .echo
    /// `user_input_audio_format` (what we accept).
    public var inputFormat = "ulaw_8000"
    /// `agent_output_audio_format` (what we send).
    public var outputFormat = "ulaw_8000"
    /// Echo delay (ms).
    public var echoDelayMillis = 0
    /// `ping` cadence (ms); 0 sends none.
    public var pingIntervalMillis = 2000
    /// Dynamic variables the initiation must carry (else close 1008, like the service).
    public var requiredDynamicVariables: [String] = []
    /// When set, sockets need a signature from `get-signed-url`, which needs this `xi-api-key`.
    public var apiKey: String?
    /// Script: the responses' audio (PCM16 at `scriptRate`) and text, played in turn.
    public var scriptResponses: [(text: String, samples: [Int16])] = []
    public var scriptRate = 16000
    /// Script: how much faster than real time response audio is sent, and in what chunks (ms).
    public var scriptSpeed = 4.0
    public var scriptChunkMillis = 100
    /// Script: close normally (1000) after this many responses have been played out; 0 = never.
    public var endAfterResponses = 0
    /// Script: after an interruption, send this many more chunks of the interrupted response (late audio the
    /// bridge must discard).
    public var lateChunksAfterInterruption = 0
    /// Script: ask the client to run this tool after the first response (it is unknown to the bridge).
    public var toolCallName: String?
    /// Fail the conversation this long after it starts (ms): an `error` event, then close 1011, as the service does
    /// on an internal error. 0 = never.
    public var failAfterMillis = 0
    /// Echo mode: send an `interruption` this often (ms; 0 = never), each for the response being echoed, which then
    /// continues as a new response (load runs measure interruption -> clear).
    public var interruptEveryMillis = 0
    /// Latency probes (load runs): stamp sequence-probe frames, report clicks heard (see LatencyProbe.swift).
    public var probeRegistry: ProbeRegistry?
    /// Caller speech threshold (RMS of PCM16) for interruption detection.
    public var speechRMS = 600.0

    public init() {}
}

/// What the simulator saw (for tests and the CLI report).
public struct AgentSimulatorReport: Sendable {
    public var sessions = 0
    public var initiations: [[String: String]] = []
    public var rejectedSessions = 0
    public var audioChunks = 0
    public var audioBytes = 0
    /// Caller audio received, decoded to PCM16 at the input rate, all sessions appended (tests use one call).
    public var receivedPCM: [Int16] = []
    public var pingsSent = 0
    public var pongsMatched = 0
    public var pongsUnexpected = 0
    public var userMessages: [String] = []
    public var contextualUpdates: [String] = []
    public var toolResults: [(callID: String, result: String, isError: Bool)] = []
    public var interruptionsSent = 0
    /// When each interruption was sent (monotonic ns).
    public var interruptionTimes: [UInt64] = []
    public var signedURLsIssued = 0
    public var closeCodes: [UInt16] = []
    public var firstMessageErrors = 0
}

/// The agent simulator server.
public final class AgentSimulator: Sendable {
    public let configuration: AgentSimulatorConfiguration
    let server: Server
    let state = Mutex<AgentSimulatorReport>(AgentSimulatorReport())
    let signatures = Mutex<Set<String>>([])
    let conversationCounter = Atomic<Int>(0)

    /// A simulator on `port` (0 = any free port) of `host`.
    public init(configuration: AgentSimulatorConfiguration, host: String = "127.0.0.1", port: Int = 0, loops: Int = 1, logger: Logger) throws {
        guard AudioFormat(elevenLabsName: configuration.inputFormat) != nil, AudioFormat(elevenLabsName: configuration.outputFormat) != nil else {
            throw HarnessError("unknown audio format \(configuration.inputFormat) / \(configuration.outputFormat)")
        }
        self.configuration = configuration
        var settings = ServerConfiguration()
        settings.host = host
        settings.port = port
        settings.loops = loops
        settings.maxWebSocketMessageBytes = 1 << 20
        settings.webSocketIdleTimeoutSeconds = 120
        let router = Router()
        server = Server(configuration: settings, router: router, logger: logger)
        router.captureHeader("xi-api-key")
        router.on(.GET, "/v1/convai/conversation/get-signed-url") { [self] req in try signedURL(req) }
        router.webSocket("/v1/convai/conversation") { [self] req, loop in
            guard req.queryValue("agent_id").map({ !$0.isEmpty }) ?? false else {
                throw HTTPError(400, code: "missing_agent_id", message: "agent_id is required")
            }
            if configuration.apiKey != nil {
                guard let sig = req.queryValue("conversation_signature"), signatures.withLock({ $0.remove(sig) != nil }) else {
                    throw HTTPError(403, code: "invalid_signature", message: "this agent needs a signed URL")
                }
            }
            state.withLock { $0.sessions += 1 }
            return try AgentSimSession(simulator: self, loop: loop)
        }
    }

    public func start() throws { try server.start() }
    public var port: Int { server.port }
    public func shutdown() async { await server.shutdown(timeout: .seconds(2)) }

    /// A snapshot of what was seen.
    public var report: AgentSimulatorReport { state.withLock { $0 } }

    func signedURL(_ req: HTTPRequest) throws -> HTTPResponse {
        guard let key = configuration.apiKey else { throw HTTPError(404, code: "not_found", message: "this agent is public") }
        guard let given = req.headers["xi-api-key"], Signing.constantTimeEqual(given, key) else {
            throw HTTPError(401, code: "invalid_api_key", message: "xi-api-key is missing or wrong")
        }
        guard let agent = req.queryValue("agent_id"), !agent.isEmpty else {
            throw HTTPError(422, code: "validation_error", message: "agent_id is required")
        }
        let sig = Signing.hex(Signing.randomBytes(16))
        signatures.withLock { _ = $0.insert(sig) }
        state.withLock { $0.signedURLsIssued += 1 }
        let host = req.headers["host"] ?? "127.0.0.1:\(port)"
        return .json(200, "{\"signed_url\":\(JSONString.quote("ws://\(host)/v1/convai/conversation?agent_id=\(agent)&conversation_signature=\(sig)"))}")
    }
}

/// One simulated conversation. Loop-owned.
final class AgentSimSession: WebSocketHandler {
    let sim: AgentSimulator
    let config: AgentSimulatorConfiguration
    let loop: EventLoop
    let input: AudioFormat
    let output: AudioFormat
    let echoPipeline: TranscodePipeline
    let decodeBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    let inputToPCM: TranscodePipeline
    let message = JSONMessageBuffer(capacity: 1 << 17)
    var connection: WebSocketConnection?
    var initiated = false
    var closed = false
    var timer: LoopTimer?
    var nextPingAt: UInt64 = 0
    var pingID: Int64 = 100
    var pendingPings: Set<Int64> = []
    // Echo: (due time, bytes) in arrival order.
    var echoQueue: [(due: UInt64, bytes: [UInt8])] = []
    var echoHead = 0
    // Script.
    var responses: [(text: String, audio: [UInt8])] = []
    var responseIndex = 0
    var eventID: Int64 = 1
    var playing: (audio: [UInt8], offset: Int, nextAt: UInt64, eventID: Int64)?
    var playoutEndsAt: UInt64 = 0
    var speechFrames = 0, silenceFrames = 0, callerSpeaking = false, callerSpeechFrames = 0
    var lateChunksLeft = 0
    var lateEventID: Int64 = 0
    var responsesPlayed = 0
    var currentResponseID: Int64 = 0
    var endAt: UInt64 = 0
    var callID: String?
    var echoEventID: Int64 = 1
    var nextInterruptAt: UInt64 = .max
    var failAt: UInt64 = 0

    init(simulator: AgentSimulator, loop: EventLoop) throws {
        sim = simulator
        config = simulator.configuration
        self.loop = loop
        input = AudioFormat(elevenLabsName: config.inputFormat)!
        output = AudioFormat(elevenLabsName: config.outputFormat)!
        echoPipeline = try TranscodePipeline(from: input, to: output)
        inputToPCM = try TranscodePipeline(from: input, to: AudioFormat(encoding: .pcm16, sampleRate: input.sampleRate))
        if config.mode == .script {
            responses = try config.scriptResponses.map { ($0.text, try AudioClip.encode($0.samples, rate: config.scriptRate, as: output)) }
        }
    }

    deinit { decodeBuffer.deallocate() }

    static func now() -> UInt64 { EventLoop.monotonicNanos() }

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        self.connection = connection
        connection.maxMessageBytes = 1 << 20
        timer = loop.makeTimer { self.tick() } // released by invalidate() on close
        timer?.schedule(at: Self.now() + 5_000_000_000) // the initiation must come soon
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        guard !closed else { return }
        let scanner = JSONScanner(message.bytes)
        guard let event = AgentClientEvent.parse(scanner) else {
            reject(errorType: "invalid_message", "message is not valid JSON")
            return
        }
        if !initiated {
            guard case .initiation(let vars) = event else {
                sim.state.withLock { $0.firstMessageErrors += 1 }
                reject(errorType: "invalid_message", "conversation_initiation_client_data must be the first message")
                return
            }
            let missing = config.requiredDynamicVariables.filter { vars[$0] == nil }
            guard missing.isEmpty else {
                reject(errorType: "missing_dynamic_variable", "Missing required dynamic variables in first message: \(missing)")
                return
            }
            initiated = true
            callID = vars["twilio_call_sid"]
            sim.state.withLock { $0.initiations.append(vars) }
            let n = sim.conversationCounter.add(1, ordering: .relaxed).newValue
            connection.send(text: AgentServerMessage.metadata(conversationID: "conv_sim_\(n)", output: config.outputFormat, input: config.inputFormat))
            let now = Self.now()
            nextPingAt = config.pingIntervalMillis > 0 ? now + UInt64(config.pingIntervalMillis) * 1_000_000 : .max
            if config.mode == .script { startResponse(now: now) }
            if config.failAfterMillis > 0 { failAt = now + UInt64(config.failAfterMillis) * 1_000_000 }
            if config.interruptEveryMillis > 0 { nextInterruptAt = now + UInt64(config.interruptEveryMillis) * 1_000_000 }
            schedule(now: now)
            return
        }
        switch event {
        case .userAudioChunk(let payload):
            guard let n = Base64.decode(scanner.raw(payload), into: decodeBuffer) else { reject(errorType: "invalid_message", "bad base64"); return }
            let bytes = UnsafeRawBufferPointer(rebasing: decodeBuffer[0..<n])
            let pcm = inputToPCM.process(bytes)
            let samples = pcm.bindMemory(to: Int16.self)
            if let registry = config.probeRegistry {
                // Load run: stamp the echo time into sequence frames; report clicks heard (no audio kept).
                if SequenceProbe.read(bytes) != nil {
                    SequenceProbe.stampAgent(UnsafeMutableRawBufferPointer(rebasing: decodeBuffer[0..<n]), at: Self.now())
                } else if let callID, ProbeRegistry.hasClick(samples) {
                    _ = registry.clickHeard(callID: callID, at: Self.now())
                }
                sim.state.withLock { $0.audioChunks += 1; $0.audioBytes += n }
            } else {
                sim.state.withLock {
                    $0.audioChunks += 1
                    $0.audioBytes += n
                    $0.receivedPCM.append(contentsOf: samples)
                }
            }
            if config.mode == .echo {
                echo(bytes)
            } else {
                listen(AudioClip.rms(samples))
            }
        case .pong(let id):
            if pendingPings.remove(id) != nil { sim.state.withLock { $0.pongsMatched += 1 } } else { sim.state.withLock { $0.pongsUnexpected += 1 } }
        case .userMessage(let text):
            sim.state.withLock { $0.userMessages.append(text) }
        case .contextualUpdate(let text):
            sim.state.withLock { $0.contextualUpdates.append(text) }
        case .toolResult(let id, let result, let isError):
            sim.state.withLock { $0.toolResults.append((id, result, isError)) }
        case .initiation:
            reject(errorType: "invalid_message", "initiation sent twice")
        case .userActivity, .other:
            break
        }
    }

    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        closed = true
        timer?.invalidate()
        sim.state.withLock { $0.closeCodes.append(code.rawValue) }
    }

    func reject(errorType: String, _ reason: String) {
        guard let connection, !closed else { return }
        closed = true
        sim.state.withLock { $0.rejectedSessions += 1 }
        connection.send(text: AgentServerMessage.error(code: 1008, errorType: errorType, message: reason))
        connection.close(.policyViolation, reason: String(reason.prefix(120)))
    }

    // MARK: Echo

    func echo(_ bytes: UnsafeRawBufferPointer) {
        let out = echoPipeline.process(bytes)
        guard out.count > 0, let connection else { return }
        if config.echoDelayMillis == 0 {
            connection.send(textBytes: AgentServerMessage.audio(out, eventID: echoEventID, into: message))
            return
        }
        echoQueue.append((Self.now() + UInt64(config.echoDelayMillis) * 1_000_000, Array(out)))
        schedule(now: Self.now())
    }

    // MARK: Script

    func startResponse(now: UInt64) {
        guard let connection, responseIndex < responses.count else { return }
        let r = responses[responseIndex]
        responseIndex += 1
        eventID += 1
        currentResponseID = eventID
        connection.send(text: AgentServerMessage.agentResponse(r.text, eventID: eventID))
        playing = (r.audio, 0, now, eventID)
        let seconds = Double(r.audio.count) / Double(output.bytesPerSample! * output.sampleRate)
        playoutEndsAt = now + UInt64(seconds * 1e9)
    }

    /// Caller audio level for one chunk: detects speech over a response (interruption) and the end of a turn.
    func listen(_ level: Double) {
        let now = Self.now()
        if level >= config.speechRMS {
            speechFrames += 1
            silenceFrames = 0
            if speechFrames >= 3 && !callerSpeaking {
                callerSpeaking = true
                callerSpeechFrames = 0
                if now < playoutEndsAt { interrupt(currentResponseID, now: now) }
            }
            if callerSpeaking { callerSpeechFrames += 1 }
        } else {
            speechFrames = 0
            silenceFrames += 1
            if callerSpeaking && silenceFrames >= 25 {
                callerSpeaking = false
                eventID += 1
                connection?.send(text: AgentServerMessage.userTranscript("(caller spoke for \(callerSpeechFrames * 20) ms)", eventID: eventID))
                startResponse(now: now)
                schedule(now: now)
            }
        }
    }

    func interrupt(_ id: Int64, now: UInt64) {
        guard let connection else { return }
        connection.send(text: AgentServerMessage.interruption(eventID: id))
        sim.state.withLock {
            $0.interruptionsSent += 1
            $0.interruptionTimes.append(now)
        }
        if let p = playing, p.eventID == id {
            let text = responses[max(0, responseIndex - 1)].text
            connection.send(text: AgentServerMessage.agentResponseCorrection(original: text, corrected: String(text.prefix(text.count / 3)), eventID: id))
            lateChunksLeft = config.lateChunksAfterInterruption
            lateEventID = id
        }
        playing = nil
        playoutEndsAt = now
        // Late audio of the interrupted response, as a real service can still have in flight.
        while lateChunksLeft > 0, let r = responses.last {
            lateChunksLeft -= 1
            let n = min(r.audio.count, output.sampleRate * output.bytesPerSample! / 10)
            r.audio.withUnsafeBytes { connection.send(textBytes: AgentServerMessage.audio(UnsafeRawBufferPointer(rebasing: $0[0..<n]), eventID: lateEventID, into: message)) }
        }
    }

    // MARK: Timer

    func schedule(now: UInt64) {
        var next = nextPingAt
        if echoHead < echoQueue.count { next = min(next, echoQueue[echoHead].due) }
        if let p = playing { next = min(next, p.nextAt) }
        if endAt > 0 { next = min(next, endAt) }
        if failAt > 0 { next = min(next, failAt) }
        next = min(next, nextInterruptAt)
        if next != .max { timer?.schedule(at: max(next, now)) }
    }

    func tick() {
        guard let connection, !closed else { return }
        let now = Self.now()
        if !initiated {
            reject(errorType: "invalid_message", "no initiation message")
            return
        }
        if now >= nextPingAt {
            pingID += 1
            pendingPings.insert(pingID)
            connection.send(text: AgentServerMessage.ping(eventID: pingID, pingMillis: 20))
            sim.state.withLock { $0.pingsSent += 1 }
            nextPingAt += UInt64(config.pingIntervalMillis) * 1_000_000
        }
        while echoHead < echoQueue.count, echoQueue[echoHead].due <= now + 200_000 {
            echoQueue[echoHead].bytes.withUnsafeBytes { connection.send(textBytes: AgentServerMessage.audio($0, eventID: echoEventID, into: message)) }
            echoHead += 1
        }
        if echoHead > 256 && echoHead * 2 > echoQueue.count {
            echoQueue.removeFirst(echoHead)
            echoHead = 0
        }
        if var p = playing, p.nextAt <= now + 200_000 {
            let chunk = output.sampleRate * output.bytesPerSample! * config.scriptChunkMillis / 1000
            let n = min(chunk, p.audio.count - p.offset)
            p.audio.withUnsafeBytes { connection.send(textBytes: AgentServerMessage.audio(UnsafeRawBufferPointer(rebasing: $0[p.offset..<(p.offset + n)]), eventID: p.eventID, into: message)) }
            p.offset += n
            p.nextAt += UInt64(Double(config.scriptChunkMillis) / config.scriptSpeed * 1e6)
            if p.offset >= p.audio.count {
                playing = nil
                responsesPlayed += 1
                if responsesPlayed == 1, let tool = config.toolCallName {
                    connection.send(text: AgentServerMessage.clientToolCall(name: tool, callID: "tc_\(p.eventID)", parametersJSON: "{\"order_id\":\"A-17\"}", eventID: p.eventID))
                }
                if config.endAfterResponses > 0 && responsesPlayed >= config.endAfterResponses {
                    endAt = playoutEndsAt
                }
            } else {
                playing = p
            }
        }
        if now >= nextInterruptAt {
            nextInterruptAt += UInt64(config.interruptEveryMillis) * 1_000_000
            // Recorded before the send: the gateway's clear can reach the caller's thread before this one resumes.
            let sentAt = Self.now()
            if let registry = config.probeRegistry, let callID { registry.interruptionSent(callID: callID, at: sentAt) }
            connection.send(text: AgentServerMessage.interruption(eventID: echoEventID))
            sim.state.withLock { $0.interruptionsSent += 1; $0.interruptionTimes.append(sentAt) }
            echoEventID += 1
        }
        if failAt > 0 && now >= failAt {
            closed = true
            connection.send(text: AgentServerMessage.error(code: 1011, errorType: "llm_error", message: "simulated internal error"))
            connection.close(.internalError, reason: "simulated internal error")
            return
        }
        if endAt > 0 && now >= endAt {
            closed = true
            connection.close(.normal, reason: "conversation ended")
            return
        }
        schedule(now: now)
    }
}

@available(*, unavailable)
extension AgentSimSession: Sendable {}
