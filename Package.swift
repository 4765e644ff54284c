// swift-tools-version:6.1
// Patchbay: a real-time voice and messaging gateway.
//
// Module map (dependencies point down only; see README "Architecture"):
//   patchbay (executable)
//   PatchbayServer                      composition root: config, routes, lifecycle, logging/metrics
//   (MediaBridge | Messaging | EventPlane | Harness: later issues)
//   Transport | HTTPClient | AudioCodecs  one wrapper per C library (lws, curl, Opus + speexdsp); Signing (OpenSSL)
//                                         and Store (SQLite) join with their issues
//   AudioCore                           pure value types: formats, G.711, rings, jitter buffer; no C, no I/O, no clock
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
        systemLibrary("CWebSockets", pkgConfig: "libwebsockets", apt: ["libwebsockets-dev"]),
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: ["libcurl4-openssl-dev"]),
        systemLibrary("COpenSSL", pkgConfig: "openssl", apt: ["libssl-dev"]),
        systemLibrary("COpus", pkgConfig: "opus", apt: ["libopus-dev"]),
        systemLibrary("CSpeexDSP", pkgConfig: "speexdsp", apt: ["libspeexdsp-dev"]),
        systemLibrary("COgg", pkgConfig: "ogg", apt: ["libogg-dev"]),
        systemLibrary("CSQLite3", pkgConfig: "sqlite3", apt: ["libsqlite3-dev"]),

        // Pure cores.
        .target(name: "AudioCore"),

        // One wrapper per C library. (Signing over COpenSSL, the Ogg/Opus part of AudioCodecs and Store over CSQLite3
        // come with their issues; their C modules are declared above.)
        .target(name: "AudioCodecs", dependencies: ["AudioCore", "COpus", "CSpeexDSP", "COgg"]),
        .target(name: "Transport", dependencies: [
            "CWebSockets",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "HTTPClient", dependencies: [
            "CCurl",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Composition root and executable.
        .target(name: "PatchbayServer", dependencies: [
            "Transport", "HTTPClient", "AudioCore", "AudioCodecs",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(name: "patchbay", dependencies: [
            "PatchbayServer", "AudioCore", "AudioCodecs",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Tests mirror targets; TestSupport holds what they share (Python peers, subprocesses, polling).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "AudioCoreTests", dependencies: ["AudioCore"]),
        .testTarget(name: "AudioCodecsTests", dependencies: ["AudioCodecs", "AudioCore", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "TestSupport"]),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient", "TestSupport"]),
        .testTarget(name: "PatchbayServerTests", dependencies: ["PatchbayServer", "Transport", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
