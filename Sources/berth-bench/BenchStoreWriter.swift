import ArgumentParser
import BerthStore

extension BenchCommand {
    /// Writes keys in order as fast as it can; killed with SIGKILL by the crash test, which then checks
    /// that the store holds a gapless prefix of the writes.
    struct StoreWriter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "store-writer",
            abstract: "Write keys k0, k1, … into an embedded store until killed (for crash tests).")

        @Argument(help: "Store directory.")
        var directory: String

        @Option(help: "Keys to write.")
        var count = 1_000_000

        @Option(help: "Journal size that triggers a snapshot, in bytes (small values exercise snapshots).")
        var snapshotAfterBytes = 64 << 10

        func run() async throws {
            var options = EmbeddedStore.Options()
            options.snapshotAfterBytes = snapshotAfterBytes
            options.durability = .process
            let store = try EmbeddedStore(directory: directory, options: options)
            let start = await store.revision
            for i in Int(start)..<count {
                try await store.put("k\(i)", Array("value of k\(i)".utf8))
            }
        }
    }
}
