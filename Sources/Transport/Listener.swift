// The listening socket each loop owns: SO_REUSEPORT so every loop binds the same port and the kernel balances
// new connections across them (as nginx workers do).
import Foundation
internal import CWebSockets
#if canImport(Glibc)
import Glibc
#endif

struct Listener {
    let fd: Int32
    let port: Int

    /// Checks that `port` is free on `host` with an exclusive bind (no SO_REUSEPORT) and returns it, or for port 0
    /// a port the kernel picks free. SO_REUSEPORT lets any process of the same user bind a port already in use and
    /// then shares its connections, so without this a second Patchbay (or a test server that picked port 0) would
    /// silently take half of another one's traffic instead of failing with "address in use".
    static func exclusivePort(host: String, port: Int) throws -> Int {
        let probe = try Listener(host: host, port: port, reusePort: false, listening: false)
        probe.close()
        return probe.port
    }

    init(host: String, port: Int, reusePort: Bool = true, listening: Bool = true) throws {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TransportError("socket() failed: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        var bound: Int32
        if v6 {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &addr.sin6_addr) == 1 else { Glibc.close(fd); throw TransportError("bad listen address \(host)") }
            bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let h = host.isEmpty ? "0.0.0.0" : host
            guard inet_pton(AF_INET, h, &addr.sin_addr) == 1 else { Glibc.close(fd); throw TransportError("bad listen address \(host)") }
            bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TransportError("cannot listen on \(host):\(port): \(reason)")
        }
        guard !listening || listen(fd, 1024) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TransportError("listen() failed on \(host):\(port): \(reason)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let actual: UInt16 = withUnsafePointer(to: &storage) { p in
            v6 ? p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
               : p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        self.fd = fd
        self.port = Int(actual)
    }

    func close() { Glibc.close(fd) }
}
