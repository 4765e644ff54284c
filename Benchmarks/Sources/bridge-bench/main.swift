// bridge-bench: N concurrent calls through a running Patchbay (pinned elsewhere by run-bridge.sh), in echo mode:
// simulated Twilio callers -> Patchbay -> simulated ElevenLabs agent -> Patchbay -> callers, latency carried in the
// audio itself (Harness/LatencyProbe.swift), a direct caller<->agent loopback floor measured in the same run, and
// Patchbay's CPU and memory read from /proc. Prints one block of figures.
import BenchKit
import Foundation
import Harness
import HTTPClient
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

struct Options {
    var patchbay = "127.0.0.1:8080"
    var pid: Int32 = 0
    var agentPort = 9100
    var calls = 50
    var seconds = 20
    var format = "ulaw_8000"
    var rampSeconds = 5.0
    var token = "bench-token-0123456789"
    var floorConnections = 4
    var interruptEveryMillis = 0

    init() {
        var args = CommandLine.arguments.dropFirst()
        while let a = args.popFirst() {
            let v = args.popFirst() ?? ""
            switch a {
            case "--patchbay": patchbay = v
            case "--pid": pid = Int32(v) ?? 0
            case "--agent-port": agentPort = Int(v) ?? agentPort
            case "--calls": calls = Int(v) ?? calls
            case "--seconds": seconds = Int(v) ?? seconds
            case "--format": format = v
            case "--ramp": rampSeconds = Double(v) ?? rampSeconds
            case "--token": token = v
            case "--interrupt-every-ms": interruptEveryMillis = Int(v) ?? 0
            default: fatalError("unknown option \(a)")
            }
        }
    }
}

// MARK: - Floor: a direct ConvAI client to the agent simulator (one loopback hop each way)

final class FloorClient: WebSocketHandler, @unchecked Sendable {
    let bytesPerFrame: Int
    let frame: UnsafeMutableRawBufferPointer
    let decoded = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    let buffer = JSONMessageBuffer(capacity: 4096)
    var connection: WebSocketConnection?
    var timer: LoopTimer?
    var next: UInt64 = 0
    var sequence: UInt32 = 0
    var ready = false
    var stopAt: UInt64 = .max
    let samples = Mutex<ProbeSamples>(ProbeSamples())

    init(bytesPerFrame: Int) {
        self.bytesPerFrame = bytesPerFrame
        frame = .allocate(byteCount: bytesPerFrame, alignment: 16)
        frame.initializeMemory(as: UInt8.self, repeating: bytesPerFrame == 160 ? 0xFF : 0)
    }

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        self.connection = connection
        connection.send(text: AgentClientMessage.initiation(dynamicVariables: [("twilio_call_sid", "floor")]))
        timer = connection.loop.makeTimer { self.tick() } // released by invalidate()
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        let now = monotonicNanos()
        let s = JSONScanner(message.bytes)
        guard let event = AgentServerEvent.parse(s) else { return }
        switch event {
        case .conversationInitiationMetadata:
            ready = true
            next = now
            tick()
        case .audio(let p, _):
            guard let n = Base64.decode(s.raw(p), into: decoded), let h = SequenceProbe.read(UnsafeRawBufferPointer(rebasing: decoded[0..<n])) else { return }
            samples.withLock {
                $0.rtt.append(UInt32(clamping: now - h.sentAt))
                if h.agentAt > h.sentAt && h.agentAt <= now {
                    $0.up.append(UInt32(clamping: h.agentAt - h.sentAt))
                    $0.down.append(UInt32(clamping: now - h.agentAt))
                }
            }
        case .ping(let id, _): connection.send(text: AgentClientMessage.pong(eventID: id))
        default: break
        }
    }

    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) { timer?.invalidate() }

    func tick() {
        guard ready, let connection else { return }
        let now = monotonicNanos()
        if now >= stopAt { connection.close(.normal); timer?.invalidate(); return }
        while next <= now + 200_000 {
            SequenceProbe.write(into: frame, sequence: sequence, sentAt: monotonicNanos())
            sequence += 1
            connection.send(textBytes: AgentClientMessage.userAudioChunk(UnsafeRawBufferPointer(frame), into: buffer))
            next += 20_000_000
        }
        timer?.schedule(at: next)
    }
}

// MARK: - Statistics

func pct(_ values: [UInt32], _ q: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.down)))]) / 1e6
}

/// Share of frames within 5 ms of their 20 ms slot (grid anchored at the first arrival, re-anchored after a
/// gap over 100 ms), and the longest gap.
func slotShare(_ times: [UInt64]) -> (within: Int, total: Int) {
    guard var anchor = times.first else { return (0, 0) }
    var k: UInt64 = 0, within = 0
    for t in times {
        var expected = anchor + k * 20_000_000
        if t > expected + 100_000_000 { anchor = t; k = 0; expected = t }
        let error = t > expected ? t - expected : expected - t
        if error <= 5_000_000 { within += 1 }
        k += 1
    }
    return (within, times.count)
}

// MARK: - Run

let options = Options()
var logger = Logger(label: "bridge-bench")
logger.logLevel = .error
let registry = ProbeRegistry()
var agentConfig = AgentSimulatorConfiguration()
agentConfig.inputFormat = options.format
agentConfig.outputFormat = options.format
agentConfig.pingIntervalMillis = 5000
agentConfig.probeRegistry = registry
agentConfig.interruptEveryMillis = options.interruptEveryMillis
let agent = try AgentSimulator(configuration: agentConfig, port: options.agentPort, loops: 1, logger: logger)
try agent.start()
let callers = try CallerSimulator.makeClientServer(loops: 1, logger: logger)
let http = HTTPClient(logger: logger)
let base = "http://\(options.patchbay)"
for _ in 0..<100 {
    if let r = try? await http.execute(HTTPClientRequest(url: base + "/healthz")), r.status == 200 { break }
    try await Task.sleep(for: .milliseconds(100))
}
let idleRSS = rssKiB(options.pid)
let bytesPerFrame = options.format == "ulaw_8000" ? 160 : (Int(options.format.split(separator: "_").last ?? "8000") ?? 8000) / 50 * 2
let floorClients = (0..<options.floorConnections).map { _ in FloorClient(bytesPerFrame: bytesPerFrame) }
for f in floorClients {
    let loop = callers.loops[0]
    let box = LoopBound(f)
    loop.execute { _ = loop.connectWebSocket(url: "ws://127.0.0.1:\(options.agentPort)/v1/convai/conversation?agent_id=floor", handler: box.value) }
}


/// Asks the voice webhook for the call's parameters, as Twilio does.
func parameters(callSID: String) async throws -> [String: String] {
    let params: [(String, String)] = [("AccountSid", "AC00000000000000000000000000000001"), ("CallSid", callSID), ("From", "+14155550100"), ("To", "+15005550006")]
    let signature = TwilioRequestSignature.compute(authToken: options.token, url: base + "/twilio/voice", parameters: params)
    let body = params.map { "\($0.0)=\(FormEncoding.encode($0.1))" }.joined(separator: "&")
    let r = try await http.execute(HTTPClientRequest(method: "POST", url: base + "/twilio/voice",
                                                     headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Twilio-Signature", signature)],
                                                     body: Array(body.utf8)))
    guard r.status == 200 else { fatalError("voice webhook answered \(r.status): \(r.bodyText)") }
    return TwiML.streamParameters(r.bodyText)
}

let mode: ProbeMode = options.format == "ulaw_8000" ? .sequence : .clicks
let started = monotonicNanos()
let reports = Mutex<[CallerReport]>([])
let group = DispatchGroup()
for i in 0..<options.calls {
    var c = CallerSimulatorConfiguration(url: "ws://\(options.patchbay)/twilio/media")
    c.signedURL = "ws://\(options.patchbay)/twilio/media"
    c.authToken = options.token
    c.customParameters = try await parameters(callSID: c.callSID)
    c.probe = mode
    c.probeRegistry = registry
    c.recordAudio = false
    c.durationMillis = options.seconds * 1000
    c.listenAfterMillis = 1000
    c.silenceAfterAudio = false
    let launchAt = started + UInt64(options.rampSeconds * 1e9 * Double(i) / Double(options.calls))
    let now = monotonicNanos()
    if launchAt > now { try await Task.sleep(for: .nanoseconds(Int(launchAt - now))) }
    let config = c
    group.enter()
    Task {
        let r = await CallerSimulator.run(config, on: callers.loops[0])
        reports.withLock { $0.append(r) }
        group.leave()
    }
}
// Steady state: every call is up; measure Patchbay's CPU and memory over most of the remaining call time.
try await Task.sleep(for: .seconds(2))
let window = max(3.0, Double(options.seconds) - options.rampSeconds - 4)
let cpu0 = cpuTicks(options.pid), t0 = monotonicNanos()
try await Task.sleep(for: .seconds(window))
let cpu1 = cpuTicks(options.pid), t1 = monotonicNanos()
let steadyRSS = rssKiB(options.pid)
for f in floorClients { let loop = callers.loops[0], box = LoopBound(f); loop.execute { box.value.stopAt = 0 } }
await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in group.notify(queue: .global()) { k.resume() } }

// MARK: - Report

let all = reports.withLock { $0 }
var rtt: [UInt32] = [], up: [UInt32] = [], down: [UInt32] = []
var setup: [UInt32] = []
var within = 0, totalFrames = 0, lateSends = 0, sent = 0, received = 0, lost = 0, duplicates = 0, reordered = 0
var longestGap = 0.0, connected = 0
var clearDelays: [UInt32] = []
for r in all {
    rtt += r.probe.rtt; up += r.probe.up; down += r.probe.down
    if r.connected { connected += 1 }
    clearDelays += registry.clearDelays(callID: r.callSID, clears: r.clearTimes).map { UInt32(clamping: $0) }
    if r.firstMediaAt > 0 { setup.append(UInt32(clamping: r.firstMediaAt - r.startedAt)) }
    let s = slotShare(r.mediaTimes)
    within += s.within; totalFrames += s.total
    lateSends += r.lateSends
    sent += r.framesSent
    received += r.mediaReceived
    duplicates += r.probe.duplicates
    reordered += r.probe.reordered
    longestGap = max(longestGap, r.longestGapMillis(graceMillis: 40))
    if mode == .sequence, !r.probe.seen.isEmpty {
        // Frames sent at least 500 ms before the hang-up must have come back.
        let bound = max(0, Int(r.probe.lastSequenceSent) - 25)
        lost += (0...bound).filter { $0 < r.probe.seen.count && !r.probe.seen[$0] }.count
    }
}
var floorUp: [UInt32] = [], floorDown: [UInt32] = [], floorRTT: [UInt32] = []
for f in floorClients { f.samples.withLock { floorUp += $0.up; floorDown += $0.down; floorRTT += $0.rtt } }
let cpuPercent = (cpu1 - cpu0) / Double(sysconf(Int32(_SC_CLK_TCK))) / (Double(t1 - t0) / 1e9) * 100
let fu = pct(floorUp, 0.5), fd = pct(floorDown, 0.5)
func added(_ v: Double, _ floor: Double) -> String { String(format: "%.3f", max(0, v - 2 * floor)) }
print("calls \(options.calls) (\(connected) connected), format \(options.format), \(options.seconds) s each, probe \(mode == .sequence ? "sequence" : "clicks")")
print(String(format: "patchbay cpu %.1f %% of one core, rss idle %.1f MiB, steady %.1f MiB, %.1f KiB per call", cpuPercent, idleRSS / 1024, steadyRSS / 1024, (steadyRSS - idleRSS) / Double(max(1, options.calls))))
print(String(format: "floor one hop ms: up p50 %.3f p99 %.3f, down p50 %.3f p99 %.3f; floor rtt p50 %.3f (%d samples)", fu, pct(floorUp, 0.99), fd, pct(floorDown, 0.99), pct(floorRTT, 0.5), floorRTT.count))
print(String(format: "caller->agent ms p50 %.3f p99 %.3f p99.9 %.3f | added p50 %@ p99 %@ p99.9 %@", pct(up, 0.5), pct(up, 0.99), pct(up, 0.999), added(pct(up, 0.5), fu), added(pct(up, 0.99), fu), added(pct(up, 0.999), fu)))
print(String(format: "agent->caller ms p50 %.3f p99 %.3f p99.9 %.3f | added p50 %@ p99 %@ p99.9 %@", pct(down, 0.5), pct(down, 0.99), pct(down, 0.999), added(pct(down, 0.5), fd), added(pct(down, 0.99), fd), added(pct(down, 0.999), fd)))
print(String(format: "round trip ms p50 %.3f p99 %.3f p99.9 %.3f (%d samples)", pct(rtt, 0.5), pct(rtt, 0.99), pct(rtt, 0.999), rtt.count))
print(String(format: "frames sent %d, received %d, lost %d, duplicated %d, reordered %d; within 5 ms of slot %.4f %%; longest gap %.1f ms", sent, received, lost, duplicates, reordered, Double(within) / Double(max(1, totalFrames)) * 100, longestGap))
if options.interruptEveryMillis > 0 {
    print(String(format: "interruption -> clear at the caller ms (agent -> gateway -> caller, two hops) p50 %.3f p99 %.3f p99.9 %.3f (%d) | added p50 %@ p99 %@",
                 pct(clearDelays, 0.5), pct(clearDelays, 0.99), pct(clearDelays, 0.999), clearDelays.count,
                 String(format: "%.3f", max(0, pct(clearDelays, 0.5) - fd - fu)), String(format: "%.3f", max(0, pct(clearDelays, 0.99) - fd - fu))))
}
print(String(format: "call set-up (connect to first echoed frame) ms p50 %.1f p99 %.1f; load generator late sends %d%@", pct(setup, 0.5), pct(setup, 0.99), lateSends, lateSends == 0 ? "" : " (RUN DOES NOT COUNT)"))
await callers.shutdown(timeout: .seconds(2))
await agent.shutdown()
http.shutdown()
