// Barge-in, the agent ending the call, the fallback, and the Python peer, end to end.
import AudioCodecs
import AudioCore
import Events
import Foundation
import Harness
import MediaBridge
import Signing
import Transport
import WireFormats
import Testing
import TestSupport

@Suite("Call lifecycle end to end", .serialized)
struct CallLifecycleTests {
    /// 1 s of line silence, then the caller speaks (the speech fixture).
    func silenceThenSpeech(_ silenceMillis: Int = 1000) throws -> [UInt8] {
        [UInt8](repeating: MuLaw.silence, count: silenceMillis * 8) + (try speechMuLaw())
    }

    @Test("barge-in: clear goes out within a frame of the interruption, no stale agent audio follows, played ms reported",
          .timeLimit(.minutes(1)))
    func bargeIn() async throws {
        var agent = AgentSimulatorConfiguration()
        agent.mode = .script
        agent.inputFormat = "ulaw_8000"
        agent.outputFormat = "pcm_16000"
        agent.scriptResponses = [("Hola, gracias por llamar a la clínica. ¿En qué puedo ayudarle hoy?", try speech16k() + speech16k()),
                                 ("Perfecto.", try speech16k())]
        agent.lateChunksAfterInterruption = 5
        agent.pingIntervalMillis = 0
        let rig = try Rig(agent: agent)
        let c = try await rig.caller(audio: try silenceThenSpeech(), durationMillis: 4000)
        let report = await rig.call(c)
        let interrupted = await rig.event("call.interrupted")
        let done = await rig.event("call.completed")
        let sim = rig.agent.report
        let transcripts = rig.events.events.filter { $0.type == "call.transcript" }
        await rig.shutdown()

        #expect(sim.interruptionsSent >= 1)
        #expect(report.clears >= 1)
        #expect(report.protocolViolations == 0, "\(report.violationSamples)")
        guard let sentAt = sim.interruptionTimes.first, let clearAt = report.clearTimes.first else { return }
        // The gateway sends `clear` within one 20 ms frame of reading the interruption (its own measurement, in the
        // final event below); end to end the clear also crosses two loopback hops of this shared machine, so only
        // a gross bound here (BENCHMARKS.md has the distribution).
        #expect(clearAt > sentAt && clearAt - sentAt < 100_000_000, "clear \(Double(clearAt - sentAt) / 1e6) ms after the interruption")
        // The agent sent 5 late chunks of the interrupted response right after it: none may reach the caller, and
        // the next response only starts once the caller has stopped talking (>= 500 ms later).
        let stale = report.mediaTimes.filter { $0 > clearAt && $0 < clearAt + 400_000_000 }.count
        #expect(stale == 0, "\(stale) media messages within 400 ms after the clear")
        #expect(int(done, "agent_to_caller", "stale_discarded") ?? 0 >= 5)
        // What was heard: more than nothing, less than the whole 2 x 4 s response.
        let played = int(interrupted, "played_ms") ?? -1
        #expect(played > 0 && played < 8000, "played \(played) ms")
        let agentLine = transcripts.first { string($0, "role") == "agent" && $0.data["interrupted"] == .bool(true) }
        #expect(agentLine != nil)
        #expect(transcripts.contains { string($0, "role") == "user" })
        #expect(int(done, "max_clear_latency_us") ?? .max < 20_000)
    }

    @Test("the agent ends the conversation: the goodbye plays to its final mark, then the call is hung up over REST",
          .timeLimit(.minutes(1)))
    func agentEnds() async throws {
        var agent = AgentSimulatorConfiguration()
        agent.mode = .script
        agent.outputFormat = "ulaw_8000"
        let goodbye = try speech16k()
        agent.scriptResponses = [("Gracias por llamar. Adiós.", goodbye)]
        agent.endAfterResponses = 1
        agent.pingIntervalMillis = 0
        let rig = try Rig(agent: agent)
        var c = try await rig.caller(audio: [], durationMillis: 20_000)
        c.hangUp = false
        let report = await rig.call(c)
        let done = await rig.event("call.completed")
        let updates = rig.api.updates
        await rig.shutdown()

        #expect(report.hungUpByAPI)
        #expect(updates.count == 1 && updates.first?.body == "Status=completed")
        #expect(string(done, "reason") == "agent_ended")
        // The whole goodbye reached the caller (rounded up to whole frames), before the hang-up.
        let expected = goodbye.count / 2
        #expect(report.receivedAudio.count >= expected && report.receivedAudio.count <= expected + 160, "\(report.receivedAudio.count) of \(expected) bytes")
        #expect(report.payloadSizes == [160])
        #expect(report.marksEchoed == report.marksReceived)
    }

    @Test("an unreachable agent: the fallback prompt plays, then the call is hung up and reported failed",
          .timeLimit(.minutes(1)))
    func fallback() async throws {
        let prompt = NSTemporaryDirectory() + "patchbay-fallback-\(UUID().uuidString).wav"
        let tone = (0..<8000).map { Int16(8000 * sin(2 * Double.pi * 440 * Double($0) / 16000)) } // 0.5 s at 16 kHz
        FileManager.default.createFile(atPath: prompt, contents: Data(WAVAudio(sampleRate: 16000, samples: tone).serialized()))
        defer { try? FileManager.default.removeItem(atPath: prompt) }
        let rig = try Rig(agent: AgentSimulatorConfiguration(), env: ["PATCHBAY_FALLBACK_PROMPT": prompt, "PATCHBAY_AGENT_START_TIMEOUT_MS": "2000"],
                          agentReachable: false)
        var c = try await rig.caller(audio: [], durationMillis: 20_000)
        c.hangUp = false
        let report = await rig.call(c)
        let failed = await rig.event("call.failed")
        await rig.shutdown()

        #expect(report.hungUpByAPI)
        #expect(string(failed, "reason") == "agent_unreachable")
        #expect(report.receivedAudio.count >= 4000 && report.receivedAudio.count <= 4160, "\(report.receivedAudio.count) bytes of prompt")
        let heard = MuLaw.decode(report.receivedAudio)
        #expect(heard.withUnsafeBufferPointer { AudioClip.rms($0) } > 3000)
    }

    @Test("an independent Python caller (websockets) gets its audio back through the bridge", .timeLimit(.minutes(1)))
    func pythonCaller() async throws {
        let rig = try Rig(agent: AgentSimulatorConfiguration())
        let c = try await rig.caller(audio: [])
        let out = NSTemporaryDirectory() + "patchbay-py-\(UUID().uuidString).json"
        var args = [repositoryRoot.appendingPathComponent("Tests/python/twilio_caller.py").path,
                    "--url", rig.mediaURL, "--auth-token", twilioToken, "--signed-url", "wss://gw.example.com/twilio/media",
                    "--call-sid", c.callSID, "--account-sid", twilioAccount, "--stream-sid", c.streamSID,
                    "--seconds", "2", "--dtmf", "5", "--out", out]
        for (k, v) in c.customParameters.sorted(by: { $0.key < $1.key }) { args += ["--param", "\(k)=\(v)"] }
        let result = try await runProgram(testPython, args, timeoutSeconds: 30)
        let done = await rig.event("call.completed")
        let sim = rig.agent.report
        await rig.shutdown()
        defer { try? FileManager.default.removeItem(atPath: out) }

        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any] ?? [:]
        #expect(json["protocol_violations"] as? Int == 0)
        #expect(json["payload_sizes"] as? [Int] == [160])
        #expect((json["received_bytes"] as? Int ?? 0) >= (json["sent_frames"] as? Int ?? 0) * 160 - 160 * 5)
        #expect((json["marks_received"] as? Int ?? 0) > 0)
        #expect((json["marks_received"] as? Int ?? 0) - (json["marks_echoed"] as? Int ?? 0) <= 3) // the last may still be queued at stop
        // Pass-through: the bytes come back unchanged.
        let sent = Data(base64Encoded: json["sent_mulaw_b64"] as? String ?? "") ?? Data()
        let got = Data(base64Encoded: json["received_mulaw_b64"] as? String ?? "") ?? Data()
        // Pass-through end to end: every byte sent comes back, in order, unchanged (then the line silence the bridge
        // fills once the caller stops streaming).
        #expect(sent.count >= 100 * 160 && got.count >= sent.count && got.prefix(sent.count) == sent,
                "sent \(sent.count) bytes, got \(got.count)")
        #expect(sim.userMessages == ["[keypad] 5"])
        #expect(string(done, "reason") == "caller_hangup")
    }
}

@Suite("Teardown end to end", .serialized)
struct TeardownTests {
    @Test("the agent fails mid-call (error event, close 1011): fallback prompt, REST hang-up, call.failed with the error type",
          .timeLimit(.minutes(1)))
    func agentFails() async throws {
        var agent = AgentSimulatorConfiguration()
        agent.failAfterMillis = 800
        let rig = try Rig(agent: agent)
        var c = try await rig.caller(audio: try speechMuLaw(), durationMillis: 30_000)
        c.hangUp = false
        let report = await rig.call(c)
        let failed = await rig.event("call.failed")
        await rig.shutdown()

        #expect(report.hungUpByAPI)
        #expect(string(failed, "reason") == "agent_closed_1011")
        #expect(string(failed, "agent_error_type") == "llm_error")
        // The caller heard its echo for 0.8 s, then the whole default prompt.
        #expect(report.receivedAudio.count >= FallbackPrompt.defaultMuLaw.count)
    }

    @Test("Twilio drops the socket without stop: the agent leg is closed normally and the call ends", .timeLimit(.minutes(1)))
    func twilioDrops() async throws {
        let rig = try Rig(agent: AgentSimulatorConfiguration())
        let c = try await rig.caller(audio: [])
        let start = TwilioStart(streamSID: c.streamSID, accountSID: twilioAccount, callSID: c.callSID, customParameters: c.customParameters).json()
        let client = RawStreamClient([.text(ProtocolViolationTests.connected), .text(start)])
        let loop = rig.callers.loops[0]
        let box = rig.openRawStream(client)
        let started = await eventually(seconds: 5) { rig.agent.report.initiations.count == 1 }
        loop.execute { box.connection?.close(.goingAway, reason: "network lost") }
        let done = await rig.event("call.completed")
        let closed = await eventually(seconds: 5) { rig.agent.report.closeCodes == [1000] }
        await rig.shutdown()

        #expect(started)
        #expect(string(done, "reason") == "twilio_disconnected_1001")
        #expect(closed)
    }
}
