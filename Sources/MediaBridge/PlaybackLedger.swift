// What the caller actually heard. Twilio echoes a mark when the audio before it has played *or* was cleared
// (twilio-media-streams.md §7), so the ledger remembers, for each mark in flight, how many frames had been sent
// before it and whether a `clear` has happened since: an echo from before the clear is "cleared", not "played".
// Per agent response (ElevenLabs `event_id`) it keeps the frames sent and the frames heard. Pure: no clock, no I/O;
// the pending-mark ring is allocated once.

/// A response's playback record.
struct ResponseRecord {
    var eventID: Int64
    var firstFrame: Int64 = -1
    /// One past the last frame sent.
    var endFrame: Int64 = -1
    /// Frames received from the agent (20 ms each).
    var receivedFrames = 0
    /// Frames heard (per played marks).
    var playedFrames = 0
    var text: String?
    var correctedText: String?
    var interrupted = false
    /// Playback is over (played to its end, interrupted, or the call ended).
    var finished = false
    /// Its transcript event went out.
    var published = false
}

/// The outcome of a mark echo.
enum MarkEcho: Equatable {
    /// Playback reached the mark: `framesBefore` frames had been sent before it.
    case played(framesBefore: Int64)
    /// The mark was sent before a `clear`: what preceded it may not have played.
    case cleared
    /// Not a mark in flight (a duplicate, or not ours).
    case unknown
}

struct PlaybackLedger {
    private var pendingNumber: [Int64]
    private var pendingFrames: [Int64]
    private var pendingEpoch: [Int]
    private var head = 0, tail = 0
    private var epoch = 0
    private(set) var nextMarkNumber: Int64 = 1
    /// Frames sent to Twilio so far.
    private(set) var framesSent: Int64 = 0
    /// Frames known to have played (the last played mark).
    private(set) var framesPlayed: Int64 = 0
    private(set) var marksSent = 0, marksPlayed = 0, marksCleared = 0, marksRefused = 0
    /// Recent responses, oldest first (bounded).
    private(set) var responses: [ResponseRecord] = []
    static let maxResponses = 32

    init(maxPendingMarks: Int = 256) {
        pendingNumber = Array(repeating: 0, count: maxPendingMarks)
        pendingFrames = Array(repeating: 0, count: maxPendingMarks)
        pendingEpoch = Array(repeating: 0, count: maxPendingMarks)
    }

    var pendingMarks: Int { tail - head }

    /// Frames sent after the last mark (or since the start).
    var framesSinceLastMark: Int64 {
        pendingMarks > 0 ? framesSent - pendingFrames[(tail - 1) % pendingFrames.count] : framesSent - lastMarkFrames
    }
    private var lastMarkFrames: Int64 = 0

    /// A frame of response `eventID` was sent.
    mutating func frameSent(eventID: Int64) {
        let i = responseIndex(eventID)
        if responses[i].firstFrame < 0 { responses[i].firstFrame = framesSent }
        if responses[i].finished && !responses[i].interrupted {
            // More audio after it seemed over (the agent was slower than real time): open it again; its transcript
            // goes out again with the larger figure.
            responses[i].finished = false
            responses[i].published = false
        }
        framesSent += 1
        responses[i].endFrame = framesSent
    }

    /// A frame of response `eventID` arrived from the agent.
    mutating func frameReceived(eventID: Int64) {
        responses[responseIndex(eventID)].receivedFrames += 1
    }

    /// Reserves a mark number for a mark about to be sent after the frames sent so far; nil when too many are in
    /// flight (the mark is then skipped and counted).
    mutating func markSent() -> Int64? {
        guard pendingMarks < pendingNumber.count else { marksRefused += 1; return nil }
        let slot = tail % pendingNumber.count
        let n = nextMarkNumber
        nextMarkNumber += 1
        pendingNumber[slot] = n
        pendingFrames[slot] = framesSent
        pendingEpoch[slot] = epoch
        tail += 1
        lastMarkFrames = framesSent
        marksSent += 1
        return n
    }

    /// Twilio echoed mark `number`. Marks come back in order; earlier ones still pending are resolved with it.
    mutating func markEchoed(_ number: Int64) -> MarkEcho {
        var result = MarkEcho.unknown
        while head < tail {
            let slot = head % pendingNumber.count
            let n = pendingNumber[slot]
            guard n <= number else { break }
            head += 1
            if pendingEpoch[slot] != epoch {
                marksCleared += 1
                if n == number { result = .cleared }
            } else {
                marksPlayed += 1
                framesPlayed = max(framesPlayed, pendingFrames[slot])
                if n == number { result = .played(framesBefore: pendingFrames[slot]) }
            }
        }
        if case .played = result { accountPlayed() }
        return result
    }

    /// Twilio's queue was cleared: marks in flight now mean "cleared". Unplayed responses are over, interrupted.
    mutating func cleared() {
        epoch += 1
        for i in responses.indices where !responses[i].finished && responses[i].firstFrame >= 0 {
            responses[i].interrupted = true
            responses[i].finished = true
        }
        // Frames sent but not heard are gone: the next frame starts a fresh queue.
        framesPlayed = framesSent
    }

    /// The agent said response `eventID` was interrupted (it may have had no audio yet).
    mutating func interrupted(eventID: Int64) {
        for i in responses.indices where responses[i].eventID <= eventID && !responses[i].finished {
            responses[i].interrupted = true
            responses[i].finished = true
        }
    }

    mutating func setText(_ text: String, eventID: Int64) { responses[responseIndex(eventID)].text = text }
    mutating func setCorrection(_ text: String, eventID: Int64) { responses[responseIndex(eventID)].correctedText = text }

    /// Marks a response's transcript as published.
    mutating func markPublished(eventID: Int64) {
        if let i = responses.firstIndex(where: { $0.eventID == eventID }) { responses[i].published = true }
    }

    /// The call ended: every response is over.
    mutating func finishAll() {
        for i in responses.indices { responses[i].finished = true }
    }

    /// Responses whose playback is over and whose transcript has not gone out (and has text).
    func unpublishedFinished() -> [ResponseRecord] {
        responses.filter { $0.finished && !$0.published && $0.text != nil }
    }

    private mutating func accountPlayed() {
        for i in responses.indices where responses[i].firstFrame >= 0 && !responses[i].interrupted {
            let heard = min(framesPlayed, responses[i].endFrame) - responses[i].firstFrame
            responses[i].playedFrames = max(responses[i].playedFrames, Int(max(0, heard)))
        }
    }

    /// Marks responses over once all their audio sent has played and none of it waits locally (`waiting`: the
    /// responses that still have frames queued here).
    mutating func finishPlayed(waiting: (Int64?, Int64?)) {
        for i in responses.indices where !responses[i].finished && responses[i].firstFrame >= 0 {
            let r = responses[i]
            if framesPlayed >= r.endFrame && waiting.0 != r.eventID && waiting.1 != r.eventID {
                responses[i].finished = true
            }
        }
    }

    private mutating func responseIndex(_ eventID: Int64) -> Int {
        if let i = responses.indices.last, responses[i].eventID == eventID { return i } // the common case, per frame
        if let i = responses.lastIndex(where: { $0.eventID == eventID }) { return i }
        if responses.count >= Self.maxResponses { responses.removeFirst() }
        responses.append(ResponseRecord(eventID: eventID))
        return responses.count - 1
    }
}
