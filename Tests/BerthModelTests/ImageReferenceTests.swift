import BerthModel
import Testing

/// References normalised as Docker normalises them, and Kubernetes' default pull policies.
@Suite struct ImageReferenceTests {
    @Test(arguments: [
        ("redis", "docker.io/library/redis:latest", ImagePullPolicy.always),
        ("redis:7", "docker.io/library/redis:7", .ifNotPresent),
        ("bitnami/redis:7.2", "docker.io/bitnami/redis:7.2", .ifNotPresent),
        ("index.docker.io/library/redis:7", "docker.io/library/redis:7", .ifNotPresent),
        ("registry.k8s.io/redis:e2e", "registry.k8s.io/redis:e2e", .ifNotPresent),
        ("gcr.io/google-samples/gb-frontend:v5", "gcr.io/google-samples/gb-frontend:v5", .ifNotPresent),
        ("localhost/app", "localhost/app:latest", .always),
        ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1", .ifNotPresent),
        ("app:latest", "docker.io/library/app:latest", .always),
        ("a/b__c/d-e.f:1", "docker.io/a/b__c/d-e.f:1", .ifNotPresent),
    ])
    func normalises(_ text: String, _ expected: String, _ policy: ImagePullPolicy) throws {
        let r = try ImageReference(parsing: text)
        #expect(r.description == expected)
        #expect(r.defaultPullPolicy == policy)
    }

    @Test func digestsPin() throws {
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let r = try ImageReference(parsing: "redis@" + digest)
        #expect(r.description == "docker.io/library/redis@" + digest)
        #expect(r.reference == digest)
        #expect(r.defaultPullPolicy == .ifNotPresent)
        let both = try ImageReference(parsing: "redis:7@" + digest)
        #expect(both.tag == "7" && both.reference == digest)
    }

    @Test(arguments: ["", "Redis", "redis:", "redis:-x", "redis@sha256:abc", "re//dis", "-redis", "redis-", "host:99999/x", "a/b:" + String(repeating: "t", count: 129), "redis@md5:00"])
    func rejects(_ text: String) {
        #expect(throws: ImageReferenceError.self) { try ImageReference(parsing: text) }
    }
}
