import Foundation

/// Runs programs for the end-to-end tests and finds the built `berth` next to the test binary.
enum Shell {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var berth: String { built("berth") }
    /// The runtime's own binary, as runc's clients call it.
    static var berthRuntime: String { built("berth-runtime") }
    /// The benchmarks' executable (the store writer the crash test kills lives there).
    static var berthBench: String { built("berth-bench") }

    static func built(_ name: String) -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary sits in `<build>/debug/` or inside a `.xctest` bundle there.
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return name
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    @discardableResult
    static func run(_ executable: String, _ args: [String], cwd: String? = nil, stdin: String? = nil,
                    env: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        p.arguments = executable.hasPrefix("/") ? args : [executable] + args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        // Read both pipes before waiting so a full pipe cannot stall the child.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh directory removed when the closure ends, whatever happens.
    static func withTempDir<T>(_ body: (String) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try body(dir)
    }

    static func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

extension Shell {
    /// Runs a program under GNU time and returns its exit status and peak RSS in KiB. Measuring with
    /// wait4 here would be wrong: posix_spawn shares this (large) process's memory until exec, and the
    /// kernel counts that towards the child's peak.
    static func peakRSS(_ executable: String, _ args: [String]) throws -> (status: Int32, maxRSSKiB: Int) {
        let r = try run("/usr/bin/time", ["-f", "%M"] + [executable] + args)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        return (r.status, Int(last.trimmingCharacters(in: .whitespaces)) ?? 0)
    }
}
