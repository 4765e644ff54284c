// ElevenLabs Conversational AI WebSocket messages (shared/protocols/elevenlabs-convai.md §3-§4): the events the
// server sends (scanned in place; `audio` without allocating), the client messages we send, and, for the agent
// simulator, the reverse of both.

/// A server event, scanned. String payloads are copied (control events are rare); `audio` is a span into the message.
public enum AgentServerEvent {
    case conversationInitiationMetadata(conversationID: String, agentOutputFormat: String, userInputFormat: String)
    /// Agent speech: the base64 span of `audio_event.audio_base_64` and the response's `event_id` (-1 if absent).
    case audio(payload: JSONSpan, eventID: Int64)
    case agentResponse(text: String, eventID: Int64)
    case agentResponseCorrection(original: String, corrected: String, eventID: Int64)
    case userTranscript(text: String, eventID: Int64)
    case tentativeUserTranscript(text: String, eventID: Int64)
    case interruption(eventID: Int64)
    case ping(eventID: Int64, pingMillis: Int64?)
    case vadScore(Double)
    case clientToolCall(name: String, callID: String, parametersJSON: String, eventID: Int64)
    case agentToolResponse(name: String, callID: String, isError: Bool)
    case error(code: Int64?, errorType: String?, message: String?)
    /// Any other `type` (informational events; ignored, per §4).
    case other(type: String)

    /// Scans one server message; nil when it is not a JSON object with a string `type`.
    public static func parse(_ scanner: JSONScanner) -> AgentServerEvent? {
        guard let root = scanner.rootObject(), let type = scanner.member("type", of: root), type.kind == .string else { return nil }
        func object(_ key: StaticString) -> JSONSpan? { scanner.member(key, of: root).flatMap { $0.kind == .object ? $0 : nil } }
        func text(_ key: StaticString, _ o: JSONSpan?) -> String? { o.flatMap { scanner.member(key, of: $0) }.flatMap { scanner.string($0) } }
        func int(_ key: StaticString, _ o: JSONSpan?) -> Int64? { o.flatMap { scanner.member(key, of: $0) }.flatMap { scanner.integer($0) } }
        if scanner.equals(type, "audio") {
            if let e = object("audio_event") {
                // One pass over the event (the payload is most of the message).
                var payload: JSONSpan?, id: Int64 = -1
                scanner.forEachMember(of: e) { name, value in
                    if scanner.equals(name, "audio_base_64") { payload = value }
                    else if scanner.equals(name, "event_id") { id = scanner.integer(value) ?? -1 }
                    return true
                }
                if let payload, payload.kind == .string { return .audio(payload: payload, eventID: id) }
            }
            // Legacy shape (§4): {"type":"audio","audio":{"chunk":"…"}}.
            if let legacy = object("audio"), let p = scanner.member("chunk", of: legacy), p.kind == .string {
                return .audio(payload: p, eventID: int("event_id", legacy) ?? -1)
            }
            return .other(type: "audio")
        }
        if scanner.equals(type, "ping") {
            let e = object("ping_event")
            return .ping(eventID: int("event_id", e) ?? 0, pingMillis: int("ping_ms", e))
        }
        if scanner.equals(type, "vad_score") {
            let e = object("vad_score_event")
            return .vadScore(e.flatMap { scanner.member("vad_score", of: $0) }.flatMap { scanner.double($0) } ?? 0)
        }
        if scanner.equals(type, "conversation_initiation_metadata") {
            let e = object("conversation_initiation_metadata_event")
            return .conversationInitiationMetadata(conversationID: text("conversation_id", e) ?? "",
                                                   agentOutputFormat: text("agent_output_audio_format", e) ?? "",
                                                   userInputFormat: text("user_input_audio_format", e) ?? "")
        }
        if scanner.equals(type, "agent_response") {
            let e = object("agent_response_event")
            return .agentResponse(text: text("agent_response", e) ?? "", eventID: int("event_id", e) ?? -1)
        }
        if scanner.equals(type, "agent_response_correction") {
            let e = object("agent_response_correction_event")
            return .agentResponseCorrection(original: text("original_agent_response", e) ?? "",
                                            corrected: text("corrected_agent_response", e) ?? "", eventID: int("event_id", e) ?? -1)
        }
        if scanner.equals(type, "user_transcript") {
            let e = object("user_transcription_event")
            return .userTranscript(text: text("user_transcript", e) ?? "", eventID: int("event_id", e) ?? -1)
        }
        if scanner.equals(type, "tentative_user_transcript") {
            let e = object("tentative_user_transcription_event")
            return .tentativeUserTranscript(text: text("user_transcript", e) ?? "", eventID: int("event_id", e) ?? -1)
        }
        if scanner.equals(type, "interruption") {
            return .interruption(eventID: int("event_id", object("interruption_event")) ?? -1)
        }
        if scanner.equals(type, "client_tool_call") {
            let e = object("client_tool_call")
            let params = e.flatMap { scanner.member("parameters", of: $0) }.map { scanner.text($0) } ?? "{}"
            return .clientToolCall(name: text("tool_name", e) ?? "", callID: text("tool_call_id", e) ?? "",
                                   parametersJSON: params, eventID: int("event_id", e) ?? -1)
        }
        if scanner.equals(type, "agent_tool_response") {
            let e = object("agent_tool_response")
            let isError = e.flatMap { scanner.member("is_error", of: $0) }.map { $0.kind == .bool && $0.isTrue } ?? false
            return .agentToolResponse(name: text("tool_name", e) ?? "", callID: text("tool_call_id", e) ?? "", isError: isError)
        }
        if scanner.equals(type, "error") {
            let e = object("error_event")
            return .error(code: int("code", e), errorType: text("error_type", e), message: text("message", e))
        }
        return .other(type: scanner.string(type) ?? "")
    }
}

/// Client messages (what Patchbay sends to the agent).
public enum AgentClientMessage {
    /// `conversation_initiation_client_data` with dynamic variables (§3.1: at the top level, strings only here).
    public static func initiation(dynamicVariables: [(String, String)], overrideJSON: String? = nil) -> String {
        var s = "{\"type\":\"conversation_initiation_client_data\""
        if let overrideJSON { s += ",\"conversation_config_override\":" + overrideJSON }
        s += ",\"dynamic_variables\":{"
        s += dynamicVariables.map { JSONString.quote($0.0) + ":" + JSONString.quote($0.1) }.joined(separator: ",")
        return s + "}}"
    }

    /// `{"type":"pong","event_id":N}`.
    public static func pong(eventID: Int64) -> String { "{\"type\":\"pong\",\"event_id\":\(eventID)}" }

    /// `{"type":"client_tool_result",…}`: `result` is a string (§3).
    public static func toolResult(callID: String, result: String, isError: Bool) -> String {
        "{\"type\":\"client_tool_result\",\"tool_call_id\":\(JSONString.quote(callID)),\"result\":\(JSONString.quote(result)),\"is_error\":\(isError)}"
    }

    /// `{"type":"user_message","text":…}`.
    public static func userMessage(_ text: String) -> String { "{\"type\":\"user_message\",\"text\":\(JSONString.quote(text))}" }

    /// `{"type":"contextual_update","text":…}`.
    public static func contextualUpdate(_ text: String) -> String { "{\"type\":\"contextual_update\",\"text\":\(JSONString.quote(text))}" }

    /// `{"user_audio_chunk":"<base64>"}` into `buffer` (no `type` field, §3).
    public static func userAudioChunk(_ payload: UnsafeRawBufferPointer, into buffer: JSONMessageBuffer) -> UnsafeRawBufferPointer {
        buffer.reset()
        buffer.append("{\"user_audio_chunk\":\"")
        buffer.appendBase64(payload)
        buffer.append("\"}")
        return buffer.bytes
    }
}

/// What a client sent, as the agent simulator reads it.
public enum AgentClientEvent {
    case userAudioChunk(payload: JSONSpan)
    case initiation(dynamicVariables: [String: String])
    case pong(eventID: Int64)
    case userMessage(String)
    case contextualUpdate(String)
    case toolResult(callID: String, result: String, isError: Bool)
    case userActivity
    case other(type: String)

    /// Scans one client message; nil when it is not a JSON object.
    public static func parse(_ scanner: JSONScanner) -> AgentClientEvent? {
        guard let root = scanner.rootObject() else { return nil }
        if let chunk = scanner.member("user_audio_chunk", of: root), chunk.kind == .string { return .userAudioChunk(payload: chunk) }
        guard let type = scanner.member("type", of: root), type.kind == .string else { return nil }
        func text(_ key: StaticString) -> String { scanner.member(key, of: root).flatMap { scanner.string($0) } ?? "" }
        if scanner.equals(type, "pong") { return .pong(eventID: scanner.member("event_id", of: root).flatMap { scanner.integer($0) } ?? -1) }
        if scanner.equals(type, "conversation_initiation_client_data") {
            var vars: [String: String] = [:]
            if let d = scanner.member("dynamic_variables", of: root) {
                scanner.forEachMember(of: d) { k, v in
                    if let key = scanner.string(k) { vars[key] = scanner.string(v) ?? scanner.text(v) }
                    return true
                }
            }
            return .initiation(dynamicVariables: vars)
        }
        if scanner.equals(type, "user_message") { return .userMessage(text("text")) }
        if scanner.equals(type, "contextual_update") { return .contextualUpdate(text("text")) }
        if scanner.equals(type, "user_activity") { return .userActivity }
        if scanner.equals(type, "client_tool_result") {
            let isError = scanner.member("is_error", of: root).map { $0.kind == .bool && $0.isTrue } ?? false
            return .toolResult(callID: text("tool_call_id"), result: text("result"), isError: isError)
        }
        return .other(type: scanner.string(type) ?? "")
    }
}

/// Server messages, as the agent simulator writes them (§4 shapes).
public enum AgentServerMessage {
    public static func metadata(conversationID: String, output: String, input: String) -> String {
        "{\"type\":\"conversation_initiation_metadata\",\"conversation_initiation_metadata_event\":{\"conversation_id\":\(JSONString.quote(conversationID)),\"agent_output_audio_format\":\(JSONString.quote(output)),\"user_input_audio_format\":\(JSONString.quote(input))}}"
    }
    public static func audio(_ payload: UnsafeRawBufferPointer, eventID: Int64, into buffer: JSONMessageBuffer) -> UnsafeRawBufferPointer {
        buffer.reset()
        buffer.append("{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"")
        buffer.appendBase64(payload)
        buffer.append("\",\"event_id\":")
        buffer.append(decimal: eventID)
        buffer.append("}}")
        return buffer.bytes
    }
    public static func agentResponse(_ text: String, eventID: Int64) -> String {
        "{\"type\":\"agent_response\",\"agent_response_event\":{\"agent_response\":\(JSONString.quote(text)),\"event_id\":\(eventID)}}"
    }
    public static func agentResponseCorrection(original: String, corrected: String, eventID: Int64) -> String {
        "{\"type\":\"agent_response_correction\",\"agent_response_correction_event\":{\"original_agent_response\":\(JSONString.quote(original)),\"corrected_agent_response\":\(JSONString.quote(corrected)),\"event_id\":\(eventID)}}"
    }
    public static func userTranscript(_ text: String, eventID: Int64) -> String {
        "{\"type\":\"user_transcript\",\"user_transcription_event\":{\"user_transcript\":\(JSONString.quote(text)),\"event_id\":\(eventID)}}"
    }
    public static func interruption(eventID: Int64) -> String {
        "{\"type\":\"interruption\",\"interruption_event\":{\"event_id\":\(eventID)}}"
    }
    public static func ping(eventID: Int64, pingMillis: Int64?) -> String {
        "{\"type\":\"ping\",\"ping_event\":{\"event_id\":\(eventID),\"ping_ms\":\(pingMillis.map(String.init) ?? "null")}}"
    }
    public static func vadScore(_ score: Double) -> String {
        "{\"type\":\"vad_score\",\"vad_score_event\":{\"vad_score\":\(score)}}"
    }
    public static func clientToolCall(name: String, callID: String, parametersJSON: String, eventID: Int64) -> String {
        "{\"type\":\"client_tool_call\",\"client_tool_call\":{\"tool_name\":\(JSONString.quote(name)),\"tool_call_id\":\(JSONString.quote(callID)),\"parameters\":\(parametersJSON),\"event_id\":\(eventID)}}"
    }
    public static func error(code: Int, errorType: String, message: String) -> String {
        "{\"type\":\"error\",\"error_event\":{\"code\":\(code),\"message\":\(JSONString.quote(message)),\"error_type\":\(JSONString.quote(errorType))}}"
    }
}

/// `X-Twilio-Signature`'s signed string (shared/protocols/twilio-media-streams.md §10): the URL, then each
/// parameter's name and value, names in byte order, a repeated name's distinct values sorted (twilio-python 9.13
/// `RequestValidator.compute_signature` takes `sorted(set(values))`). The HMAC is in `Signing`.
public enum TwilioSignatureString {
    public static func make(url: String, parameters: [(String, String)]) -> String {
        var s = url
        if let hash = s.firstIndex(of: "#") { s = String(s[..<hash]) }
        var seen = Set<String>()
        let distinct = parameters.filter { seen.insert($0.0 + "\u{0}" + $0.1).inserted }
        let sorted = distinct.sorted { a, b in
            a.0.utf8.elementsEqual(b.0.utf8) ? a.1.utf8.lexicographicallyPrecedes(b.1.utf8) : a.0.utf8.lexicographicallyPrecedes(b.0.utf8)
        }
        for (k, v) in sorted { s += k + v }
        return s
    }
}
