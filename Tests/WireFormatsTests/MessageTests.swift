// Base64, the JSON scanner, and the Twilio / ElevenLabs messages, table-driven on the reference's shapes.
import Foundation
import Testing
import WireFormats

func scan<T>(_ text: String, _ body: (JSONScanner) throws -> T) rethrows -> T {
    try Array(text.utf8).withUnsafeBytes { try body(JSONScanner($0)) }
}

@Suite("Wire formats")
struct MessageTests {
    @Test("base64 matches Foundation for every length 0-300 and random bytes; bad input is refused")
    func base64() {
        var rng = SystemRandomNumberGenerator()
        for n in 0...300 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let ours = Base64.encode(bytes)
            #expect(ours == Data(bytes).base64EncodedString())
            #expect(Base64.decode(ours) == bytes)
        }
        for bad in ["A", "AB=C", "AB\u{00e9}C", "ABC*", "AB==CD==", "=AAA"] { #expect(Base64.decode(bad) == nil, "\(bad)") }
        #expect(Base64.decode("AA\\/A") == [0x00, 0x0F, 0xC0]) // JSON's escaped solidus
    }

    @Test("the scanner finds members in any order and spacing, and refuses broken documents", arguments: [
        ("{\"a\":1,\"b\":\"x\"}", true), (" { \"b\" : \"x\" , \"a\" : 1 } ", true), ("{\"a\":{\"b\":[1,2,{\"c\":null}]},\"b\":\"x\"}", true),
        ("{\"a\":1,}", false), ("{\"a\" 1}", false), ("{\"a\":\"x}", false), ("[1,2]", false), ("{\"a\":tru}", false),
        ("{\"a\":1}}", false), ("", false), ("{\"a\":\"\u{01}\"}", false),
    ])
    func scanner(text: String, valid: Bool) {
        scan(text) { s in
            let root = s.rootObject()
            #expect((root != nil) == valid, "\(text)")
            if valid, let root {
                #expect(s.member("b", of: root).flatMap { s.string($0) } == "x")
            }
        }
    }

    @Test("strings of every length with an escape, a quote or a control byte at every position agree with Foundation")
    func stringPositions() throws {
        for length in 0..<40 {
            for position in -1..<length {
                for special in ["\\\"", "\\n", "\\u00e9", "\u{01}", "\""] {
                    var chars = Array(repeating: "a", count: length)
                    if position >= 0 { chars[position] = special }
                    let text = "{\"k\":\"" + chars.joined() + "\"}"
                    let foundation = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String]
                    scan(text) { s in
                        let ours = s.rootObject().flatMap { s.member("k", of: $0) }.flatMap { s.string($0) }
                        #expect(ours == foundation?["k"], "\(text.debugDescription)")
                    }
                }
            }
        }
    }

    @Test("strings with escapes decode; numbers and numeric strings read as integers")
    func stringsAndNumbers() {
        scan("{\"s\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\\n\",\"n\":\"42\",\"m\":-7,\"f\":0.5}") { s in
            let root = s.rootObject()!
            #expect(s.string(s.member("s", of: root)!) == "a\"b\\c\u{00e9}\u{1F600}\n")
            #expect(s.integer(s.member("n", of: root)!) == 42)
            #expect(s.integer(s.member("m", of: root)!) == -7)
            #expect(s.integer(s.member("f", of: root)!) == nil)
            #expect(s.double(s.member("f", of: root)!) == 0.5)
        }
    }

    @Test("Twilio messages of the reference scan to their fields")
    func twilioInbound() throws {
        let media = "{\"event\": \"media\", \"sequenceNumber\": \"4\", \"media\": {\"track\": \"inbound\", \"chunk\": \"2\", \"timestamp\": \"72\", \"payload\": \"/////w==\"}, \"streamSid\": \"MZ00000000000000000000000000000003\"}"
        scan(media) { s in
            var m = TwilioInboundMessage()
            let parsed = m.parse(s)
            #expect(parsed)
            #expect(m.event == .media && m.sequenceNumber == 4 && m.mediaChunk == 2 && m.mediaTimestampMillis == 72 && m.mediaTrackIsInbound)
            #expect(m.mediaPayload.map { s.string($0) } == "/////w==")
        }
        let start = "{\"event\": \"start\", \"sequenceNumber\": \"1\", \"start\": {\"accountSid\": \"AC00000000000000000000000000000001\", \"streamSid\": \"MZ00000000000000000000000000000003\", \"callSid\": \"CA00000000000000000000000000000002\", \"tracks\": [\"inbound\"], \"customParameters\": {\"tenant\": \"acme\", \"call_id\": \"call_01HZX\"}, \"mediaFormat\": {\"encoding\": \"audio/x-mulaw\", \"sampleRate\": 8000, \"channels\": 1}}, \"streamSid\": \"MZ00000000000000000000000000000003\"}"
        try scan(start) { s in
            var m = TwilioInboundMessage()
            #expect(m.parse(s) && m.event == .start)
            let st = try TwilioStart(m, s)
            #expect(st == TwilioStart(streamSID: "MZ00000000000000000000000000000003", accountSID: "AC00000000000000000000000000000001",
                                      callSID: "CA00000000000000000000000000000002", customParameters: ["tenant": "acme", "call_id": "call_01HZX"]))
        }
        // Our own start JSON scans back to the same value.
        let ours = TwilioStart(streamSID: "MZ1", accountSID: "AC1", callSID: "CA1", customParameters: ["a": "b\"c"])
        try scan(ours.json()) { s in
            var m = TwilioInboundMessage()
            _ = m.parse(s)
            let back = try TwilioStart(m, s)
            #expect(back == ours)
        }
        for (text, event) in [("{\"event\":\"dtmf\",\"streamSid\":\"MZ1\",\"sequenceNumber\":\"5\",\"dtmf\":{\"track\":\"inbound_track\",\"digit\":\"1\"}}", TwilioEvent.dtmf),
                              ("{\"event\":\"mark\",\"sequenceNumber\":\"103\",\"streamSid\":\"MZ1\",\"mark\":{\"name\":\"pb-7\"}}", .mark),
                              ("{\"event\":\"stop\",\"sequenceNumber\":\"812\",\"streamSid\":\"MZ1\",\"stop\":{\"accountSid\":\"AC1\",\"callSid\":\"CA1\"}}", .stop),
                              ("{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}", .connected),
                              ("{\"event\":\"future\",\"x\":1}", .unknown)] {
            scan(text) { s in
                var m = TwilioInboundMessage()
                let parsed = m.parse(s)
                #expect(parsed && m.event == event, "\(text)")
            }
        }
    }

    @Test("what we send Twilio has exactly event, streamSid and the event's object")
    func twilioOutbound() {
        let w = TwilioOutboundWriter(streamSID: "MZ00000000000000000000000000000003")
        let payload: [UInt8] = Array(repeating: 0xFF, count: 160)
        let media = payload.withUnsafeBytes { String(decoding: w.media($0), as: UTF8.self) }
        #expect(media == "{\"event\":\"media\",\"streamSid\":\"MZ00000000000000000000000000000003\",\"media\":{\"payload\":\"\(Data(payload).base64EncodedString())\"}}")
        #expect(String(decoding: w.mark(number: 17), as: UTF8.self) == "{\"event\":\"mark\",\"streamSid\":\"MZ00000000000000000000000000000003\",\"mark\":{\"name\":\"pb-17\"}}")
        #expect(String(decoding: w.clear(), as: UTF8.self) == "{\"event\":\"clear\",\"streamSid\":\"MZ00000000000000000000000000000003\"}")
        for (name, number) in [("pb-17", Int64(17)), ("pb-0", 0), ("pb-", nil), ("xx-1", nil), ("pb-1a", nil)] as [(String, Int64?)] {
            scan("{\"n\":\"\(name)\"}") { s in #expect(w.markNumber(s, s.member("n", of: s.rootObject()!)!) == number, "\(name)") }
        }
    }

    @Test("ElevenLabs server events of the reference parse", arguments: [
        "{\"type\":\"conversation_initiation_metadata\",\"conversation_initiation_metadata_event\":{\"conversation_id\":\"conv_01jxyz\",\"agent_output_audio_format\":\"ulaw_8000\",\"user_input_audio_format\":\"pcm_16000\"}}",
        "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"/////39/fn1+\",\"event_id\":7}}",
        "{\"type\":\"agent_response\",\"agent_response_event\":{\"agent_response\":\"Sure, let me check that.\",\"event_id\":7}}",
        "{\"type\":\"user_transcript\",\"user_transcription_event\":{\"user_transcript\":\"What are your hours?\",\"event_id\":6}}",
        "{\"type\":\"interruption\",\"interruption_event\":{\"event_id\":7}}",
        "{\"type\":\"agent_response_correction\",\"agent_response_correction_event\":{\"original_agent_response\":\"Sure, let me check that for you right now.\",\"corrected_agent_response\":\"Sure, let me check\",\"event_id\":7}}",
        "{\"type\":\"ping\",\"ping_event\":{\"event_id\":12345,\"ping_ms\":50}}",
        "{\"type\":\"ping\",\"ping_event\":{\"event_id\":12346,\"ping_ms\":null}}",
        "{\"type\":\"vad_score\",\"vad_score_event\":{\"vad_score\":0.95}}",
        "{\"type\":\"client_tool_call\",\"client_tool_call\":{\"tool_name\":\"lookup_order\",\"tool_call_id\":\"tc_1\",\"parameters\":{\"order_id\":\"A-17\"},\"event_id\":9}}",
        "{\"type\":\"error\",\"error_event\":{\"code\":1008,\"message\":\"…\",\"error_type\":\"missing_dynamic_variable\",\"reason\":\"…\"}}",
        "{\"type\":\"mcp_connection_status\",\"mcp_connection_status\":{\"integrations\":[]}}",
    ])
    func elevenLabsEvents(text: String) {
        scan(text) { s in
            guard let e = AgentServerEvent.parse(s) else { Issue.record("did not parse: \(text)"); return }
            switch e {
            case .conversationInitiationMetadata(let id, let out, let input): #expect(id == "conv_01jxyz" && out == "ulaw_8000" && input == "pcm_16000")
            case .audio(let p, let id): #expect(s.string(p) == "/////39/fn1+" && id == 7)
            case .agentResponse(let t, let id): #expect(t == "Sure, let me check that." && id == 7)
            case .userTranscript(let t, let id): #expect(t == "What are your hours?" && id == 6)
            case .interruption(let id): #expect(id == 7)
            case .agentResponseCorrection(_, let c, let id): #expect(c == "Sure, let me check" && id == 7)
            case .ping(let id, let ms): #expect((id == 12345 && ms == 50) || (id == 12346 && ms == nil))
            case .vadScore(let v): #expect(v == 0.95)
            case .clientToolCall(let n, let c, let p, let id): #expect(n == "lookup_order" && c == "tc_1" && p == "{\"order_id\":\"A-17\"}" && id == 9)
            case .error(let code, let type, _): #expect(code == 1008 && type == "missing_dynamic_variable")
            case .other(let type): #expect(type == "mcp_connection_status")
            default: Issue.record("unexpected \(e)")
            }
        }
    }

    @Test("client messages: initiation carries dynamic variables at the top level; audio has no type")
    func elevenLabsClient() throws {
        let text = AgentClientMessage.initiation(dynamicVariables: [("caller_number", "+14155550100"), ("x", "a\"b")])
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect(object?["type"] as? String == "conversation_initiation_client_data")
        #expect((object?["dynamic_variables"] as? [String: String]) == ["caller_number": "+14155550100", "x": "a\"b"])
        let buffer = JSONMessageBuffer(capacity: 512)
        let audio = [UInt8](repeating: 0xFF, count: 160).withUnsafeBytes { String(decoding: AgentClientMessage.userAudioChunk($0, into: buffer), as: UTF8.self) }
        let parsed = try JSONSerialization.jsonObject(with: Data(audio.utf8)) as? [String: String]
        #expect(parsed?.keys.sorted() == ["user_audio_chunk"])
        #expect(AgentClientMessage.pong(eventID: 12345) == "{\"type\":\"pong\",\"event_id\":12345}")
    }

    @Test("TwiML parameters read back, entities resolved")
    func twiml() {
        let xml = "<Response><Connect><Stream url=\"wss://x/twilio/media\"><Parameter name=\"tenant\" value=\"acme\"/><Parameter name=\"q\" value=\"a&amp;b &quot;c&quot;\"/></Stream></Connect></Response>"
        #expect(TwiML.streamParameters(xml) == ["tenant": "acme", "q": "a&b \"c\""])
    }
}
