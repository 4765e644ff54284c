// The playback ledger (what the caller heard) and the provider URL forms, without sockets.
import Testing
@testable import MediaBridge

@Suite("Playback ledger")
struct PlaybackLedgerTests {
    @Test("played marks give each response its heard frames; marks from before a clear count as cleared")
    func playedAndCleared() {
        var l = PlaybackLedger()
        for _ in 0..<5 { l.frameReceived(eventID: 7); l.frameSent(eventID: 7) }
        let m1 = l.markSent()!
        for _ in 0..<5 { l.frameReceived(eventID: 7); l.frameSent(eventID: 7) }
        let m2 = l.markSent()!
        l.setText("Hola", eventID: 7)
        #expect(l.markEchoed(m1) == .played(framesBefore: 5))
        #expect(l.responses.first?.playedFrames == 5)
        l.interrupted(eventID: 7)
        l.cleared()
        #expect(l.markEchoed(m2) == .cleared)
        #expect(l.marksPlayed == 1 && l.marksCleared == 1)
        let done = l.unpublishedFinished()
        #expect(done.count == 1 && done[0].interrupted && done[0].playedFrames == 5 && done[0].receivedFrames == 10)
    }

    @Test("a response is over when its last frame's mark plays and nothing of it waits; more audio reopens it")
    func finishes() {
        var l = PlaybackLedger()
        for _ in 0..<3 { l.frameReceived(eventID: 1); l.frameSent(eventID: 1) }
        let m = l.markSent()!
        l.setText("Sí", eventID: 1)
        _ = l.markEchoed(m)
        l.finishPlayed(waiting: (nil, nil))
        #expect(l.unpublishedFinished().map(\.eventID) == [1])
        l.markPublished(eventID: 1)
        l.frameSent(eventID: 1)
        #expect(l.unpublishedFinished().isEmpty && l.responses[0].finished == false)
    }

    @Test("marks echo in order: an echo resolves every earlier mark still pending; unknown echoes are ignored")
    func ordering() {
        var l = PlaybackLedger()
        l.frameSent(eventID: 1)
        let a = l.markSent()!
        l.frameSent(eventID: 1)
        let b = l.markSent()!
        #expect(l.markEchoed(b) == .played(framesBefore: 2))
        #expect(l.markEchoed(a) == .unknown)
        #expect(l.markEchoed(999) == .unknown)
        #expect(l.marksPlayed == 2 && l.pendingMarks == 0)
    }

    @Test("ELEVENLABS_API_URL in either scheme gives both forms", arguments: [
        ("https://api.elevenlabs.io", "https://api.elevenlabs.io", "wss://api.elevenlabs.io"),
        ("wss://api.eu.residency.elevenlabs.io/", "https://api.eu.residency.elevenlabs.io", "wss://api.eu.residency.elevenlabs.io"),
        ("http://127.0.0.1:9100", "http://127.0.0.1:9100", "ws://127.0.0.1:9100"),
        ("ws://127.0.0.1:9100", "http://127.0.0.1:9100", "ws://127.0.0.1:9100"),
    ])
    func endpoints(configured: String, rest: String, socket: String) {
        let e = ElevenLabsEndpoints(configured)
        #expect(e.rest == rest && e.socket == socket)
        #expect(e.conversationURL(agentID: "agent 1") == socket + "/v1/convai/conversation?agent_id=agent%201")
        #expect(e.signedURLRequestURL(agentID: "a") == rest + "/v1/convai/conversation/get-signed-url?agent_id=a")
    }
}
