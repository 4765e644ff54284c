// swift-tools-version:6.1
// Patchbay: a real-time voice and messaging gateway.
//
// Module map (dependencies point down only; see README "Architecture"):
//   patchbay (executable)
//   PatchbayServer                      composition root: config, routes, lifecycle, logging/metrics
//   MediaBridge | EventPlane | Harness  the media and event planes; the simulators (Messaging: later)
//   Events                              event envelope + the EventSink interface the planes publish to
//   Transport | HTTPClient | Signing | AudioCodecs   one wrapper per C library (lws, curl, OpenSSL, Opus + speexdsp);
//                                         Store (SQLite) joins with its issue
//   AudioCore | WireFormats             pure value types: formats, G.711, rings, jitter stages, pacing; provider
//                                         messages, base64, JSON scanning; no C, no I/O, no clock
//   C* system libraries                 found through pkg-config, each with a shim.h
import PackageDescription

/// A system library found with pkg-config and installed from Debian.
func systemLibrary(_ name: String, pkgConfig: String, apt: [String]) -> Target {
    .systemLibrary(name: name, path: "Sources/\(name)", pkgConfig: pkgConfig, providers: [.apt(apt)])
}

let package = Package(
    name: "patchbay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "patchbay", targets: ["patchbay"]),
        .library(name: "AudioCore", targets: ["AudioCore"]),
        .library(name: "AudioCodecs", targets: ["AudioCodecs"]),
        .library(name: "Transport", targets: ["Transport"]),
        .library(name: "HTTPClient", targets: ["HTTPClient"]),
        .library(name: "WireFormats", targets: ["WireFormats"]),
        .library(name: "Signing", targets: ["Signing"]),
        .library(name: "Events", targets: ["Events"]),
        .library(name: "MediaBridge", targets: ["MediaBridge"]),
        .library(name: "Harness", targets: ["Harness"]),
        .library(name: "EventPlane", targets: ["EventPlane"]),
        .library(name: "Store", targets: ["Store"]),
        .library(name: "PatchbayServer", targets: ["PatchbayServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
    ],
    targets: [
        // C libraries: each one a module map, a shim.h of static inline helpers, nothing compiled.
        systemLibrary("CWebSockets", pkgConfig: "libwebsockets", apt: ["libwebsockets-dev", "libwebsockets-evlib-ev", "libev-dev"]),
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: ["libcurl4-openssl-dev"]),
        systemLibrary("COpenSSL", pkgConfig: "openssl", apt: ["libssl-dev"]),
        systemLibrary("COpus", pkgConfig: "opus", apt: ["libopus-dev"]),
        systemLibrary("CSpeexDSP", pkgConfig: "speexdsp", apt: ["libspeexdsp-dev"]),
        systemLibrary("COgg", pkgConfig: "ogg", apt: ["libogg-dev"]),
        systemLibrary("CSQLite3", pkgConfig: "sqlite3", apt: ["libsqlite3-dev"]),

        // Pure cores.
        .target(name: "AudioCore"),
        .target(name: "WireFormats"),

        // One wrapper per C library (Store over CSQLite3 comes with its issue).
        .target(name: "AudioCodecs", dependencies: ["AudioCore", "COpus", "CSpeexDSP", "COgg"]),
        .target(name: "Signing", dependencies: ["COpenSSL", "WireFormats"]),
        .target(name: "Store", dependencies: ["CSQLite3"]),
        .target(name: "Transport", dependencies: [
            "CWebSockets", "WireFormats",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "HTTPClient", dependencies: [
            "CCurl",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Events, the planes and the simulators.
        .target(name: "Events", dependencies: ["WireFormats"]),
        .target(name: "MediaBridge", dependencies: [
            "AudioCore", "AudioCodecs", "Events", "HTTPClient", "Signing", "Transport", "WireFormats",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "EventPlane", dependencies: [
            "Events", "HTTPClient", "Signing", "Store", "Transport", "WireFormats",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Harness", dependencies: [
            "AudioCore", "AudioCodecs", "Signing", "Transport", "WireFormats",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Composition root and executable.
        .target(name: "PatchbayServer", dependencies: [
            "Transport", "HTTPClient", "AudioCore", "AudioCodecs", "WireFormats", "Events", "MediaBridge", "EventPlane", "Store",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(name: "patchbay", dependencies: [
            "PatchbayServer", "AudioCore", "AudioCodecs", "Harness", "Transport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Tests mirror targets; TestSupport holds what they share (Python peers, subprocesses, polling).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "AudioCoreTests", dependencies: ["AudioCore"]),
        .testTarget(name: "AudioCodecsTests", dependencies: ["AudioCodecs", "AudioCore", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "WireFormats", "TestSupport"]),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient", "TestSupport"]),
        .testTarget(name: "PatchbayServerTests", dependencies: ["PatchbayServer", "Transport", "WireFormats", "TestSupport"]),
        .testTarget(name: "WireFormatsTests", dependencies: ["WireFormats", "Signing", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "PatchbayServer", "MediaBridge", "Harness", "Events", "AudioCore", "AudioCodecs", "Transport", "HTTPClient", "WireFormats",
            "Signing", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "EventPlaneTests", dependencies: [
            "PatchbayServer", "EventPlane", "Events", "Store", "Transport", "HTTPClient", "Signing", "WireFormats", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "MediaBridgeTests", dependencies: [
            "MediaBridge", "Harness", "Events", "AudioCore", "AudioCodecs", "Transport", "HTTPClient", "WireFormats", "Signing", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
