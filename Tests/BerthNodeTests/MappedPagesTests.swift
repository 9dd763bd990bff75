@testable import BerthLinux
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct MappedPagesTests {
    /// Clean read-only file pages are let go of and read again from the file; a mapping whose pages were
    /// written before it was made read-only (as the dynamic loader does with relocated data) keeps them.
    @Test func releasesCleanFilePagesAndKeepsWrittenOnes() throws {
        let path = NSTemporaryDirectory() + "berth-mapped-\(getpid())"
        defer { unlink(path) }
        let size = 1 << 20
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(content)))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let clean = try #require(mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0).flatMap { $0 == MAP_FAILED ? nil : $0 })
        let written = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0).flatMap { $0 == MAP_FAILED ? nil : $0 })
        defer { munmap(clean, size); munmap(written, size) }
        #expect(memcmp(clean, content, size) == 0)
        for offset in stride(from: 0, to: size, by: 4096) { written.storeBytes(of: 0xAB, toByteOffset: offset, as: UInt8.self) }
        #expect(mprotect(written, size, PROT_READ) == 0)

        func mapping(_ at: UnsafeMutableRawPointer) throws -> MappedPages.Mapping {
            let smaps = try #require(Files.read("/proc/self/smaps"))
            return try #require(MappedPages.parse(smaps).first { $0.start == Int(bitPattern: at) })
        }
        #expect(try mapping(clean).resident == size)
        #expect(try mapping(clean).droppable)
        #expect(try !mapping(written).droppable)

        let released = MappedPages.releaseReadOnlyFileMappings()
        #expect(released.bytes >= size)
        #expect(try mapping(clean).resident == 0)
        #expect(memcmp(clean, content, size) == 0)
        for offset in stride(from: 0, to: size, by: 4096) {
            #expect(written.load(fromByteOffset: offset, as: UInt8.self) == 0xAB)
        }
    }

    @Test func parsesMappingsWithSpacesInTheirPath() {
        let smaps = """
            7f00-7f10 r-xp 00000000 08:01 42 /opt/a dir/lib.so
            Rss:                  64 kB
            Anonymous:             0 kB
            Private_Dirty:         0 kB
            7f10-7f20 rw-p 00000000 00:00 0 
            Rss:                   8 kB
            Anonymous:             8 kB
            """
        let maps = MappedPages.parse(Array(smaps.utf8))
        #expect(maps.count == 2)
        #expect(maps[0] == MappedPages.Mapping(start: 0x7f00, end: 0x7f10, permissions: "r-xp", path: "/opt/a dir/lib.so", resident: 65536))
        #expect(maps[0].droppable)
        #expect(maps[1].path == "" && maps[1].anonymous == 8192 && !maps[1].droppable)
    }
}
