// swift-tools-version:6.1
// Patchbay's release-mode benchmarks: a package of its own (path: "../"), so nothing here enters `make test`.
// Run with `make bench` at the top level; figures go to BENCHMARKS.md.
import PackageDescription

let package = Package(
    name: "patchbay-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "patchbay", path: "../"),
    ],
    targets: [
        // Counts malloc/calloc/realloc/free calls by interposing them in the benchmark executables.
        .target(name: "CAllocCounter", path: "Sources/CAllocCounter"),
        // Timing, percentiles and allocation counting shared by every benchmark executable.
        .target(name: "BenchKit", dependencies: ["CAllocCounter"], path: "Sources/BenchKit"),
        .executableTarget(name: "audiocore-bench", dependencies: [
            "BenchKit", .product(name: "AudioCore", package: "patchbay"), .product(name: "AudioCodecs", package: "patchbay"),
        ], path: "Sources/audiocore-bench"),
        .executableTarget(name: "bridge-bench", dependencies: [
            "BenchKit", .product(name: "Harness", package: "patchbay"), .product(name: "Transport", package: "patchbay"),
            .product(name: "HTTPClient", package: "patchbay"), .product(name: "WireFormats", package: "patchbay"),
            .product(name: "Signing", package: "patchbay"),
        ], path: "Sources/bridge-bench"),
        .executableTarget(name: "events-bench", dependencies: [
            "BenchKit", .product(name: "Transport", package: "patchbay"), .product(name: "HTTPClient", package: "patchbay"),
            .product(name: "WireFormats", package: "patchbay"), .product(name: "Signing", package: "patchbay"),
        ], path: "Sources/events-bench"),
        .executableTarget(name: "ws-bench", dependencies: [
            "BenchKit", .product(name: "Transport", package: "patchbay"),
        ], path: "Sources/ws-bench"),
    ],
    swiftLanguageModes: [.v6]
)
