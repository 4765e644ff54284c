// Twilio request signatures: the reference's worked examples, and a cross-check against twilio-python's
// RequestValidator (an independent implementation) over generated URLs and parameters.
import Foundation
import Signing
import Testing
import TestSupport
import WireFormats

@Suite("Twilio signatures")
struct SignatureTests {
    static let voiceParams: [(String, String)] = [
        ("AccountSid", "AC00000000000000000000000000000001"), ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA00000000000000000000000000000002"), ("CallStatus", "ringing"), ("Called", "+15005550006"),
        ("Caller", "+14155550100"), ("Direction", "inbound"), ("From", "+14155550100"), ("To", "+15005550006"),
    ]

    @Test("worked examples of shared/protocols/twilio-media-streams.md §10.1", arguments: [
        ("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
         [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"), ("From", "+12349013030"), ("To", "+18005551212")],
         "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ("9a0b8c7d6e5f40312a3b4c5d6e7f8091", "https://gw.example.com/twilio/voice", voiceParams, "JjwMrH7LMgui4RyZ1RSvscql+Ks="),
        ("9a0b8c7d6e5f40312a3b4c5d6e7f8091", "https://gw.example.com:443/twilio/voice", voiceParams, "tLKMAsDPt/41+i4gmwJTcco3d8U="),
        ("9a0b8c7d6e5f40312a3b4c5d6e7f8091", "wss://gw.example.com/twilio/media", [], "aG5iK7xEJ9Lf47eSkjCScdTeZI8="),
    ] as [(String, String, [(String, String)], String)])
    func workedExamples(token: String, url: String, params: [(String, String)], expected: String) {
        #expect(TwilioRequestSignature.compute(authToken: token, url: url, parameters: params) == expected)
        #expect(TwilioRequestSignature.isValid(expected, authToken: token, url: url, parameters: params))
        #expect(!TwilioRequestSignature.isValid(expected, authToken: token + "x", url: url, parameters: params))
    }

    @Test("a signature over the URL without :443 also validates the URL with it, and the other way round")
    func defaultPort() {
        let token = "9a0b8c7d6e5f40312a3b4c5d6e7f8091"
        #expect(TwilioRequestSignature.isValid("JjwMrH7LMgui4RyZ1RSvscql+Ks=", authToken: token, url: "https://gw.example.com:443/twilio/voice", parameters: Self.voiceParams))
        #expect(TwilioRequestSignature.isValid("tLKMAsDPt/41+i4gmwJTcco3d8U=", authToken: token, url: "https://gw.example.com/twilio/voice", parameters: Self.voiceParams))
        #expect(!TwilioRequestSignature.isValid("", authToken: token, url: "https://gw.example.com/twilio/voice", parameters: Self.voiceParams))
    }

    @Test("twilio-python's RequestValidator agrees on 200 generated requests (repeated names, unicode, symbols)")
    func crossCheck() async throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcXYZ019 +/&=%ñé€-_.")
        var cases: [[String: Any]] = []
        var ours: [String] = []
        for i in 0..<200 {
            let token = Signing.hex(Signing.randomBytes(16))
            let url = "https://gw\(i).example.com/twilio/voice" + (i % 3 == 0 ? "?x=\(i)&y=z" : "")
            var params: [(String, String)] = []
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                let name = ["CallSid", "From", "To", "Digits", "Body", "Called"].randomElement(using: &rng)!
                let value = String((0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
                params.append((name, value))
            }
            cases.append(["token": token, "url": url, "params": params.map { [$0.0, $0.1] }])
            ours.append(TwilioRequestSignature.compute(authToken: token, url: url, parameters: params))
        }
        let input = try JSONSerialization.data(withJSONObject: cases)
        let path = NSTemporaryDirectory() + "patchbay-sig-\(UUID().uuidString).json"
        try input.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let script = """
        import json, sys
        from collections import defaultdict
        from twilio.request_validator import RequestValidator
        class Multi(defaultdict):  # what Flask's MultiDict offers RequestValidator for repeated names
            def getall(self, name): return self[name]
        out = []
        for c in json.load(open(sys.argv[1])):
            params = Multi(list)
            for k, v in c["params"]:
                params[k].append(v)
            out.append(RequestValidator(c["token"]).compute_signature(c["url"], params))
        print(json.dumps(out))
        """
        let r = try await runPython(script, [path])
        try #require(r.status == 0, "\(r.stderr)")
        let theirs = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String] ?? []
        #expect(theirs.count == 200)
        for (i, (a, b)) in zip(ours, theirs).enumerated() where a != b {
            Issue.record("case \(i): ours \(a), twilio-python \(b) for \(cases[i])")
        }
    }

    @Test("the signed string sorts names bytewise and a repeated name's distinct values (as twilio-python does)")
    func signedString() {
        let s = TwilioSignatureString.make(url: "https://a/b#frag", parameters: [("b", "2"), ("a", "z"), ("a", "y"), ("B", "1"), ("a", "y")])
        #expect(s == "https://a/bB1ayazb2")
    }

    @Test("HMAC-SHA256 and digests match RFC 4231 and known vectors")
    func digests() {
        // RFC 4231 test case 2.
        #expect(Signing.hex(Signing.hmac(.sha256, key: "Jefe", message: "what do ya want for nothing?"))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(Signing.hex(Signing.digest(.md5, Array("".utf8))) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(Signing.hex(Signing.digest(.sha256, Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Signing.constantTimeEqual("abc", "abc") && !Signing.constantTimeEqual("abc", "abd") && !Signing.constantTimeEqual("abc", "ab"))
    }
}
