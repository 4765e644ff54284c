import WireFormats
import Foundation
import Logging
import Testing
@testable import PatchbayServer
import Transport

@Suite("Log output")
struct LogHandlerTests {
    @Test("JSON lines are valid JSON with level, logger, message and metadata")
    func jsonLine() throws {
        let line = PatchbayLogHandler.jsonLine(level: .warning, message: "peer closed \"early\"\n", label: "patchbay.transport",
                                               metadata: ["ws.close_code": "1008", "call.id": .string("CA1"), "list": .array(["a", "b"])],
                                               source: "Transport", file: "/x/Server.swift", line: 12)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "patchbay.transport")
        #expect(object["msg"] as? String == "peer closed \"early\"\n")
        #expect(object["ws.close_code"] as? String == "1008")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect(object["source"] as? String == "Transport/Server.swift:12")
        #expect((object["ts"] as? String)?.hasSuffix("Z") == true)
    }

    @Test("Human lines carry level, label, message and sorted metadata")
    func humanLine() {
        let line = PatchbayLogHandler.humanLine(level: .info, message: "listening", label: "patchbay", metadata: ["port": "8080", "loops": "2"])
        #expect(line.hasSuffix(" info patchbay: listening loops=2 port=8080"))
    }

    @Test("JSON quoting (shared with Transport) escapes quotes, backslashes and control characters", arguments: [
        ("plain", "\"plain\""), ("a\"b", "\"a\\\"b\""), ("a\\b", "\"a\\\\b\""), ("\u{01}", "\"\\u0001\""), ("ñ", "\"ñ\""),
    ])
    func quoting(_ pair: (String, String)) {
        #expect(JSONString.quote(pair.0) == pair.1)
    }
}
