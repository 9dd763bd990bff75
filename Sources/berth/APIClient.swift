import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The CLI's side of the API: HTTP/1.1 over TCP to the daemon (`http://HOST:PORT`), one request per connection.
struct APIClient {
    let host: String
    let port: UInt16

    struct Failure: Error, CustomStringConvertible {
        var description: String

        init(description: String) { self.description = description }

        /// An error answer: the message of the API's Status object, else the code.
        init(code: Int, body: [UInt8], path: String) {
            let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            description = (object?["message"] as? String) ?? "HTTP \(code) for \(path)"
        }
    }

    init(server: String) throws {
        guard server.hasPrefix("http://") else { throw ValidationError("--server must be an http:// URL, e.g. http://127.0.0.1:7420") }
        let authority = server.dropFirst(7).prefix { $0 != "/" }
        guard let colon = authority.lastIndex(of: ":"), let port = UInt16(authority[authority.index(after: colon)...]) else {
            throw ValidationError("--server \(server) has no port")
        }
        host = String(authority[..<colon])
        self.port = port
    }

    /// GET `path`; the body goes to `sink` as it arrives, with the status code. Returns the status code.
    func get(_ path: String, sink: (Int, ArraySlice<UInt8>) -> Void) throws -> Int {
        try request("GET", path, token: nil, sink: sink)
    }

    /// A request without a body (POST, DELETE) with the API token; the answer's message, or its error.
    func send(_ method: String, _ path: String, token: String) throws -> [String: Any] {
        var body: [UInt8] = []
        let code = try request(method, path, token: token) { body.append(contentsOf: $1) }
        guard (200..<300).contains(code) else { throw Failure(code: code, body: body, path: path) }
        return (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    func request(_ method: String, _ path: String, token: String?, sink: (Int, ArraySlice<UInt8>) -> Void) throws -> Int {
        let fd = try connect()
        defer { close(fd) }
        let auth = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let empty = method == "GET" ? "" : "Content-Length: 0\r\n"
        let request = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nAccept: application/json\r\n\(auth)\(empty)\r\n"
        try send(fd, Array(request.utf8))
        var reader = Reader(fd: fd)
        let statusLine = try reader.line()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
            throw Failure(description: "\(host):\(port) did not answer with HTTP: \(statusLine.prefix(80))")
        }
        var length: Int?
        var chunked = false
        while true {
            let line = try reader.line()
            if line.isEmpty { break }
            let lower = line.lowercased()
            if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingCharacters(in: .whitespaces)) }
            if lower.hasPrefix("transfer-encoding:") && lower.contains("chunked") { chunked = true }
        }
        let sink = { (chunk: ArraySlice<UInt8>) in sink(code, chunk) }
        if chunked {
            while true {
                let size = try reader.line().split(separator: ";").first.flatMap { Int($0.trimmingCharacters(in: .whitespaces), radix: 16) }
                guard let size else { throw Failure(description: "bad chunk from \(host):\(port)") }
                if size == 0 { break }
                try reader.read(size, into: sink)
                _ = try reader.line()
            }
        } else if let length {
            try reader.read(length, into: sink)
        } else {
            try reader.readToEnd(into: sink)
        }
        return code
    }

    /// GET and decode a JSON object; an error status becomes the server's message.
    func json(_ path: String) throws -> [String: Any] {
        let body = try data(path)
        // A body that is no JSON gets the message below; the reason of a failed request is data's.
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw Failure(description: "the answer to \(path) is not a JSON object")
        }
        return object
    }

    func data(_ path: String) throws -> Data {
        var body: [UInt8] = []
        let code = try get(path) { body.append(contentsOf: $1) }
        guard (200..<300).contains(code) else { throw Failure(code: code, body: body, path: path) }
        return Data(body)
    }

    private func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var ai: UnsafeMutablePointer<addrinfo>? = first
        var failure = ECONNREFUSED
        while let a = ai {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            failure = errno
            if fd >= 0 {
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                failure = errno
                close(fd)
            }
            ai = a.pointee.ai_next
        }
        throw Failure(description: "cannot reach the berth API at http://\(host):\(port) (\(String(cString: strerror(failure)))); is `berth run` running? (--server)")
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "the connection to \(host):\(port) broke") }
            offset += n
        }
    }

    struct Reader {
        let fd: Int32
        var buffer: [UInt8] = []
        var start = 0

        mutating func fill() throws -> Bool {
            if start > 0 && start == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw Failure(description: "reading from the berth API: \(String(cString: strerror(errno)))") }
                buffer.append(contentsOf: chunk[0..<n])
                return n > 0
            }
        }

        mutating func line() throws -> String {
            while true {
                if let nl = buffer[start...].firstIndex(of: 10) {
                    var end = nl
                    if end > start && buffer[end - 1] == 13 { end -= 1 }
                    let s = String(decoding: buffer[start..<end], as: UTF8.self)
                    start = nl + 1
                    return s
                }
                guard buffer.count - start < 65536, try fill() else { throw Failure(description: "the berth API closed the connection early") }
            }
        }

        mutating func read(_ count: Int, into sink: (ArraySlice<UInt8>) -> Void) throws {
            var left = count
            while left > 0 {
                if start == buffer.count { guard try fill() else { throw Failure(description: "the berth API closed the connection early") } }
                let n = min(left, buffer.count - start)
                sink(buffer[start..<start + n])
                start += n
                left -= n
            }
        }

        mutating func readToEnd(into sink: (ArraySlice<UInt8>) -> Void) throws {
            repeat {
                if start < buffer.count { sink(buffer[start...]) }
                start = buffer.count
            } while try fill()
        }
    }
}
