// Simulated caller -> Patchbay -> simulated agent -> back, over real sockets on 127.0.0.1.
import AudioCore
import Events
import Foundation
import Harness
import Testing
import TestSupport

@Suite("Media bridge end to end", .serialized)
struct BridgeEndToEndTests {
    @Test("pass-through (ulaw_8000 both ways, private agent): audio comes back intact, marks echoed, DTMF and pings answered",
          .timeLimit(.minutes(1)))
    func passThrough() async throws {
        var agent = AgentSimulatorConfiguration()
        agent.apiKey = "xi_test_key_0123456789"
        agent.pingIntervalMillis = 500
        agent.requiredDynamicVariables = ["caller_number", "twilio_call_sid", "patchbay_call_id"]
        // Hold all caller audio while the agent leg starts, however long a loaded machine makes that take: this test
        // compares every byte (with the default 1 s hold, a start slower than 1 s drops the first frames by design).
        let rig = try Rig(agent: agent, env: ["PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS": "5000"])
        var c = try await rig.caller(audio: try speechMuLaw(), durationMillis: 3000)
        c.dtmf = [(1000, "1"), (1500, "#")]
        let report = await rig.call(c)
        let done = await rig.event("call.completed")
        let sim = rig.agent.report
        await rig.shutdown()

        #expect(report.connected)
        #expect(report.protocolViolations == 0, "\(report.violationSamples)")
        #expect(report.payloadSizes == [160])
        #expect(sim.signedURLsIssued == 1)
        #expect(sim.initiations.first?["twilio_call_sid"] == c.callSID)
        #expect(sim.initiations.first?["caller_number"] == "+14155550100")
        #expect(sim.userMessages == ["[keypad] 1", "[keypad] #"])
        #expect(sim.pingsSent >= 2 && sim.pongsMatched >= sim.pingsSent - 1) // the last ping may cross the hang-up; a loaded machine starts the leg late
        #expect(sim.pongsUnexpected == 0)
        // Pass-through: the agent got every frame, and the bytes that come back are the bytes sent, unchanged and in
        // order, as far as the gateway had played them out when the caller hung up (caller audio buffered while the
        // agent leg opened comes back as a burst that the pacer meters out at real time, so it stays behind).
        let sent = report.sentAudio, got = report.receivedAudio
        let fromAgent = int(done, "agent_to_caller", "frames_received") ?? 0, toCaller = int(done, "agent_to_caller", "frames_sent") ?? 0
        #expect(int(done, "caller_to_agent", "frames_sent") == Int64(report.framesSent), "\(done?.json ?? "no call.completed")")
        #expect(fromAgent >= Int64(report.framesSent) - 2)
        // (Frames the gateway sent after the caller's stop crossed it are not received.)
        #expect(Int64(got.count) <= toCaller * 160 && Int64(got.count) >= (toCaller - 10) * 160 && got[...] == sent.prefix(got.count),
                "sent \(sent.count), got \(got.count); \(done?.json ?? "no call.completed")")
        let backlog = fromAgent - toCaller, startMillis = int(done, "agent_start_ms") ?? 0
        #expect(backlog <= startMillis / 20 + 6, "\(backlog) frames still queued; the agent leg took \(startMillis) ms to start")
        let echo = report.echoLatency(maxMillis: 400)
        #expect(echo.correlation > 0.99, "correlation \(echo.correlation) at \(echo.millis) ms")
        // Every mark is echoed once its audio has played; the last few can still be queued when the caller hangs up.
        #expect(report.marksReceived > 10 && report.marksReceived - report.marksEchoed <= 3)
        // Pacing: the audio comes back as a stream, not in bursts. Only a gross bound here: the caller's clock sees
        // this shared machine's scheduling, and gaps, underruns and slot timing are measured in Benchmarks/.
        #expect(int(done, "agent_to_caller", "underruns") != nil)
        #expect(report.longestGapMillis() < 250, "longest gap toward the caller \(report.longestGapMillis()) ms: \(debugGaps(report))")
        #expect(report.closeCode == 1000)
        // Events: started, two DTMF, completed with the caller's hang-up and clean stats.
        #expect(rig.events.events.first?.type == "call.started")
        #expect(rig.events.events.filter { $0.type == "call.dtmf" }.count == 2)
        #expect(string(done, "reason") == "caller_hangup")
        #expect(int(done, "caller_to_agent", "frames_sent") == Int64(report.framesSent))
        #expect(sim.closeCodes == [1000])
    }

    @Test("transcoding (agent at pcm_16000 both ways): audio comes back correlated, 160-byte frames, no gaps",
          .timeLimit(.minutes(1)))
    func transcoding() async throws {
        var agent = AgentSimulatorConfiguration()
        agent.inputFormat = "pcm_16000"
        agent.outputFormat = "pcm_16000"
        let rig = try Rig(agent: agent)
        let c = try await rig.caller(audio: try speechMuLaw(), durationMillis: 3000)
        let report = await rig.call(c)
        let done = await rig.event("call.completed")
        await rig.shutdown()

        #expect(report.payloadSizes == [160])
        #expect(report.protocolViolations == 0)
        let echo = report.echoLatency(maxMillis: 400)
        #expect(echo.correlation > 0.8, "correlation \(echo.correlation) at \(echo.millis) ms")
        #expect(echo.millis < 300) // gross bound: the pipelines add a few ms of filter delay, not a buffer
        #expect(report.longestGapMillis() < 250, "longest gap toward the caller \(report.longestGapMillis()) ms: \(debugGaps(report))")
        if case .object(let formats)? = done?.data["formats"] {
            #expect(formats.first { $0.0 == "transcoding" }?.1 == .bool(true))
        } else {
            Issue.record("no formats in call.completed")
        }
    }
}

func debugGaps(_ r: CallerReport) -> String {
    var out: [String] = []
    let t0 = r.firstFrameAt
    for (i, (a, b)) in zip(r.mediaTimes, r.mediaTimes.dropFirst()).enumerated() where b - a > 40_000_000 {
        out.append("#\(i + 1) at \((a - t0) / 1_000_000) ms: \((b - a) / 1_000_000) ms")
    }
    return "first media at \(((r.mediaTimes.first ?? t0) - t0) / 1_000_000) ms; " + out.joined(separator: ", ")
}
