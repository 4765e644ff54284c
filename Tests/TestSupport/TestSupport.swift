// Helpers every test target shares: the venv's Python (independent protocol peers), running a program with a
// time limit, and polling for a condition. Test-only: no production target depends on this.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the repository is, from this file's path.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The Python interpreter with the test peers installed: `PATCHBAY_TEST_PYTHON` (set by `make test`), else the
/// repository's `.venv`, else `python3` from the PATH.
public var testPython: String {
    if let p = ProcessInfo.processInfo.environment["PATCHBAY_TEST_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
    let venv = repositoryRoot.appendingPathComponent(".venv/bin/python").path
    if FileManager.default.isExecutableFile(atPath: venv) { return venv }
    return "/usr/bin/python3"
}

/// The output of a finished program.
public struct RunResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `body` on a thread of its own. Blocking waits (a pipe, a child process, a socket) go here, never on
/// Dispatch's global queue: Swift's concurrency runs on that same pool (as wide as the cores, two here), so two
/// tests waiting for their Python peers there starved the gateways those peers were talking to, until the peers
/// timed out.
public func onOwnThread(_ body: @escaping @Sendable () -> Void) {
    let t = Thread { body() }
    t.stackSize = 1 << 20
    t.start()
}

/// Runs `executable` with a time limit (killed past it) and returns its exit status and output.
public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       timeoutSeconds: Double = 30) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read while it runs so a chatty program never blocks on a full pipe.
    let outData = Mutexed(Data()), errData = Mutexed(Data())
    let group = DispatchGroup()
    for (pipe, sink) in [(out, outData), (err, errData)] {
        group.enter()
        onOwnThread { sink.set(pipe.fileHandleForReading.readDataToEndOfFile()); group.leave() }
    }
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
    group.wait()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: outData.get(), as: UTF8.self),
                     stderr: String(decoding: errData.get(), as: UTF8.self))
}

/// Runs a Python snippet with the test interpreter; `Tests/python` is on its path (`from peers import ...`).
public func runPython(_ script: String, _ arguments: [String] = [], timeoutSeconds: Double = 30) throws -> RunResult {
    try runProgram(testPython, ["-c", script] + arguments, environment: pythonEnvironment, timeoutSeconds: timeoutSeconds)
}

/// The environment inline Python scripts run with: this process's, plus `Tests/python` on PYTHONPATH.
public var pythonEnvironment: [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["PYTHONPATH"] = repositoryRoot.appendingPathComponent("Tests/python").path
    return env
}

/// Polls `condition` every 5 ms for up to `seconds`; true as soon as it holds.
public func eventually(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// A free TCP port on 127.0.0.1 (bound then released; fine for a test that starts a server on it at once).
public func freeLoopbackPort() -> Int {
    let (port, fd) = reserveLoopbackPort()
    close(fd)
    return port
}

/// A TCP port on 127.0.0.1 held by a bound socket that does not listen: connections to it are refused at once, and
/// no other server (another test's gateway binding port 0) can take it. Close `fd` just before listening on it.
public func reserveLoopbackPort() -> (port: Int, fd: Int32) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (Int(UInt16(bigEndian: addr.sin_port)), fd)
}

/// A value behind a lock, for results gathered on other threads.
final class Mutexed<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func set(_ v: Value) { lock.lock(); value = v; lock.unlock() }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
}

// Async forms. Swift Testing runs async tests on the cooperative pool, which has one thread per core (two here):
// a test that blocks one (polling with usleep, waiting for a Python peer) starves the gateway's own async work
// (async HTTP handlers, store reads) in every other test. These wait without holding a pool thread. Swift picks
// them over the blocking forms inside async functions.

/// Polls `condition` every 5 ms for up to `seconds`, suspending between polls.
public func eventually(seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Runs a program on a thread of its own (not the cooperative pool) and returns its result.
public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       timeoutSeconds: Double = 30) async throws -> RunResult {
    try await withCheckedThrowingContinuation { k in
        onOwnThread {
            do { k.resume(returning: try runProgram(executable, arguments, environment: environment, timeoutSeconds: timeoutSeconds)) } catch {
                k.resume(throwing: error)
            }
        }
    }
}

/// Waits for a process to end (up to `seconds`) without holding a pool thread; whether it ended.
@discardableResult
public func waitForExit(_ process: Process, seconds: Double = 30) async -> Bool {
    await eventually(seconds: seconds) { !process.isRunning }
}

/// Reads `handle` on a thread of its own until `marker` has arrived or the pipe ends; what was read.
public func readUntil(_ handle: FileHandle, _ marker: String) async -> Data {
    await withCheckedContinuation { k in
        onOwnThread {
            var buffer = Data()
            while !String(decoding: buffer, as: UTF8.self).contains(marker) {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
            }
            k.resume(returning: buffer)
        }
    }
}

/// Runs a Python snippet with the test interpreter, off the cooperative pool.
public func runPython(_ script: String, _ arguments: [String] = [], timeoutSeconds: Double = 30) async throws -> RunResult {
    try await runProgram(testPython, ["-c", script] + arguments, environment: pythonEnvironment, timeoutSeconds: timeoutSeconds)
}
