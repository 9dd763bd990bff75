import BerthTestSupport
import Foundation
import Testing

/// A guestbook-shaped application whose manifests name registry images as the Kubernetes tutorial does
/// (docker.io, registry.k8s.io, gcr.io), run unchanged: the node pulls stand-in images pushed under those
/// names to a local registry that mirrors all three (the real registries are never contacted).
enum Guestbook {
    static func manifests(frontend: String = "gcr.io/google-samples/gb-frontend:v5") -> String {
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: redis-leader
          labels: {app: redis, role: leader, tier: backend}
        spec:
          replicas: 1
          selector:
            matchLabels: {app: redis, role: leader}
          template:
            metadata:
              labels: {app: redis, role: leader, tier: backend}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
                - name: leader
                  image: "docker.io/redis:6.0.5"
                  resources:
                    requests: {cpu: 100m, memory: 100Mi}
                  ports:
                    - containerPort: 6379
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: redis-leader
          labels: {app: redis, role: leader, tier: backend}
        spec:
          ports:
            - port: 6379
              targetPort: 6379
          selector: {app: redis, role: leader, tier: backend}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: redis-follower
          labels: {app: redis, role: follower, tier: backend}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: redis, role: follower}
          template:
            metadata:
              labels: {app: redis, role: follower, tier: backend}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
                - name: follower
                  image: registry.k8s.io/redis:e2e
                  resources:
                    requests: {cpu: 100m, memory: 100Mi}
                  ports:
                    - containerPort: 6379
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: frontend
        spec:
          replicas: 3
          selector:
            matchLabels: {app: guestbook, tier: frontend}
          template:
            metadata:
              labels: {app: guestbook, tier: frontend}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
                - name: php-redis
                  image: \(frontend)
                  env:
                    - name: GET_HOSTS_FROM
                      value: dns
                  resources:
                    requests: {cpu: 100m, memory: 100Mi}
                  ports:
                    - containerPort: 80
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: frontend
          labels: {app: guestbook, tier: frontend}
        spec:
          ports:
            - port: 80
          selector: {app: guestbook, tier: frontend}

        """
    }
}

extension DaemonTests {
    @Suite struct Registries {
        @Test(arguments: StoreBackend.allCases) func guestbookManifestsNamingRegistryImagesRunUnchanged(_ store: StoreBackend) async throws {
            try await DaemonHarness.with(store: store) { h in
                // Stand-ins: a "redis" that answers PING, a "frontend" whose page asks it through its Service.
                let redis = ["/bin/sh", "-c", "while true; do echo +PONG | nc -l -p 6379; done"]
                try TestImages.make(h.dir + "/images", tag: "redis", cmd: redis)
                try TestImages.make(h.dir + "/images", tag: "frontend",
                                    files: ["www/index.html": "guestbook\n",
                                            "www/cgi-bin/redis": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho PING | nc -w 2 redis-leader 6379\n"],
                                    cmd: ["/bin/httpd", "-f", "-p", "80", "-h", "/www"])
                let registry = try TestRegistry(dir: h.dir + "/registry")
                defer { registry.stop() }
                try registry.push(h.dir + "/images:redis", to: "library/redis:6.0.5")
                try registry.push(h.dir + "/images:redis", to: "redis:e2e")
                try registry.push(h.dir + "/images:frontend", to: "google-samples/gb-frontend:v5")
                let mirrors = ["docker.io", "registry.k8s.io", "gcr.io"].map { "  \($0):\n    endpoint: [\"http://\(registry.host)\"]\n" }.joined()
                try ("mirrors:\n" + mirrors).write(toFile: h.dir + "/registries.yaml", atomically: true, encoding: .utf8)
                h.extraArgs = ["--registries", h.dir + "/registries.yaml", "--disable-default-registry-endpoint"]

                try h.ws.commit(["guestbook.yaml": Guestbook.manifests()], in: h.work, message: "guestbook")
                try h.start()
                try await h.waitFor("the guestbook rolled out", timeout: 90) {
                    try h.rolledOut("redis-leader", replicas: 1) != nil && h.rolledOut("redis-follower", replicas: 2) != nil
                        && h.rolledOut("frontend", replicas: 3) != nil
                }
                let ip = try h.clusterIP("frontend")
                #expect(try h.inNetns(["/usr/bin/curl", "-sf", "-m", "5", "http://\(ip)/index.html"]) == "guestbook\n")
                #expect(try h.inNetns(["/usr/bin/curl", "-sf", "-m", "5", "http://\(ip)/cgi-bin/redis"]) == "+PONG\n")
                // Kubernetes' imageID for each, and the pull in the pods' events.
                let ids = try h.pods().compactMap { (($0["status"] as? [String: Any])?["containerStatuses"] as? [[String: Any]])?.first?["imageID"] as? String }
                #expect(ids.count == 6)
                #expect(Set(ids.map { $0.split(separator: "@").first.map(String.init) ?? "" }) ==
                        ["docker.io/library/redis", "registry.k8s.io/redis", "gcr.io/google-samples/gb-frontend"])
                let events = try h.get("/api/v1/namespaces/default/events")["items"] as? [[String: Any]] ?? []
                #expect(events.contains { $0["reason"] as? String == "Pulled" && ($0["message"] as? String)?.contains("gcr.io/google-samples/gb-frontend@sha256:") == true })
                #expect(events.contains { $0["reason"] as? String == "Pulling" })
                let images = try DaemonHarness.run([DaemonHarness.binaries + "/berth", "image", "ls", "--state-dir", h.stateDir])
                #expect(images.contains("gcr.io/google-samples/gb-frontend:v5\t"), "\(images)")

                // A tag nobody pushed: the new pod cannot pull and says why; the running frontends are undisturbed.
                try h.ws.commit(["guestbook.yaml": Guestbook.manifests(frontend: "gcr.io/google-samples/gb-frontend:v6")], in: h.work, message: "frontend v6")
                try await h.waitFor("the new frontend pod backs off", timeout: 60) {
                    let events = try h.get("/api/v1/namespaces/default/events")["items"] as? [[String: Any]] ?? []
                    return events.contains { ($0["reason"] as? String) == "Failed" && ($0["message"] as? String)?.contains("manifest unknown") == true }
                        && events.contains { ($0["reason"] as? String) == "BackOff" && ($0["message"] as? String)?.contains("back-off pulling image") == true }
                }
                #expect(try h.inNetns(["/usr/bin/curl", "-sf", "-m", "5", "http://\(ip)/index.html"]) == "guestbook\n")
                #expect(try h.pods("frontend").filter { h.isReady($0) }.count == 3)
            }
        }
    }
}
