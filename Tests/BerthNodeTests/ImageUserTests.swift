import BerthRuntime
import Foundation
import Testing

/// An image's USER as ids, names looked up in the image's own files.
@Suite struct ImageUserTests {
    @Test func namesResolveInsideTheImageOnly() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-user-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/rootfs/etc", withIntermediateDirectories: true)
        try "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/app:/bin/sh\n".write(toFile: root + "/rootfs/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nstaff:x:50:\n".write(toFile: root + "/rootfs/etc/group", atomically: true, encoding: .utf8)
        let rootfs = root + "/rootfs"
        #expect(try ImageRefs.user("1000", rootfs: rootfs).map { [$0.uid, $0.gid ?? -1] } == [1000, -1])
        #expect(try ImageRefs.user("1000:7", rootfs: rootfs).map { [$0.uid, $0.gid ?? -1] } == [1000, 7])
        #expect(try ImageRefs.user("app", rootfs: rootfs).map { [$0.uid, $0.gid ?? -1] } == [1001, 1002])
        #expect(try ImageRefs.user("app:staff", rootfs: rootfs).map { [$0.uid, $0.gid ?? -1] } == [1001, 50])
        #expect(try ImageRefs.user("app", rootfs: nil) == nil)
        #expect(throws: (any Error).self) { try ImageRefs.user("nobody", rootfs: rootfs) }
        // A passwd that is a link to a host file is read inside the image, where it leads nowhere.
        try FileManager.default.removeItem(atPath: rootfs + "/etc/passwd")
        try "evil:x:0:0::/:/bin/sh\n".write(toFile: root + "/host-passwd", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/etc/passwd", withDestinationPath: root + "/host-passwd")
        #expect(throws: (any Error).self) { try ImageRefs.user("evil", rootfs: rootfs) }
    }
}
