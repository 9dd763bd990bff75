import BerthStore
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real kill -9 of a process writing to the store, at several moments (snapshots included, with a
/// small snapshot threshold): the store reopens with every write up to some point and nothing after it.
@Suite struct StoreCrashTests {
    @Test func killNineLeavesAGaplessPrefix() async throws {
        var written: [Int] = []
        // The kills must have hit a writer at work, not only one still starting.
        defer { #expect(written.max() ?? 0 > 0, "keys written before kill -9: \(written)") }
        for delayMs in [30, 80, 150, 300, 500] {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-crash-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var pid: pid_t = 0
            let args = [Shell.berthBench, "store-writer", dir, "--snapshot-after-bytes", "20000"]
            let argv = args.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            #expect(posix_spawn(&pid, Shell.berthBench, nil, nil, argv, environ) == 0)
            usleep(useconds_t(delayMs * 1000))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            #expect(status & 0x7f == SIGKILL, "the writer was killed, not finished")

            let store = try EmbeddedStore(directory: dir)
            let (values, revision) = await store.list(prefix: "k")
            let n = Int(revision)
            #expect(values.count == n, "after \(delayMs) ms: \(values.count) keys at revision \(revision)")
            written.append(n)
            let byKey = Dictionary(uniqueKeysWithValues: values.map { ($0.key, $0) })
            for i in 0..<n {
                #expect(byKey["k\(i)"]?.value == Array("value of k\(i)".utf8), "k\(i) missing or wrong after \(delayMs) ms")
                #expect(byKey["k\(i)"]?.modRevision == Int64(i + 1))
            }
            // Writing goes on from there.
            #expect(try await store.put("k\(n)", Array("after".utf8)) == revision + 1)
        }
    }
}
