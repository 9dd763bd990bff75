import BerthTestSupport
import Foundation
import Testing

/// The manifests of the tests: busybox httpd behind a Service, and a worker.
enum Manifests {
    static func web(replicas: Int = 2, version: String = "1", page: String = "hello", readinessDelay: Int = 0) -> String {
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: web-content
        data:
          index.html: "\(page)"
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: \(replicas)
          selector:
            matchLabels:
              app: web
          strategy:
            rollingUpdate:
              maxSurge: 1
              maxUnavailable: 0
          template:
            metadata:
              labels:
                app: web
            spec:
              terminationGracePeriodSeconds: 2
              containers:
                - name: httpd
                  image: host
                  command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
                  env:
                    - name: VERSION
                      value: "\(version)"
                  ports:
                    - name: http
                      containerPort: 8080
                  readinessProbe:
                    httpGet:
                      path: /index.html
                      port: http
                    periodSeconds: 1
                    initialDelaySeconds: \(readinessDelay)
                  volumeMounts:
                    - name: content
                      mountPath: /www
              volumes:
                - name: content
                  configMap:
                    name: web-content
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          selector:
            app: web
          ports:
            - port: 80
              targetPort: http

        """
    }

    static let worker = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: worker
        spec:
          replicas: 1
          selector:
            matchLabels:
              app: worker
          template:
            metadata:
              labels:
                app: worker
            spec:
              terminationGracePeriodSeconds: 1
              containers:
                - name: main
                  image: host
                  command: ["/bin/sleep", "100000"]

        """
}

extension DaemonTests {
    @Suite struct GitOpsFlow {
        @Test(arguments: StoreBackend.allCases) func pushUpdateRevertPruneAndRejectThroughAGitServer(_ store: StoreBackend) async throws {
            try await DaemonHarness.with(store: store) { h in
                let first = try h.ws.commit(["web.yaml": Manifests.web(), "worker.yaml": Manifests.worker], in: h.work, message: "web and worker")
                try h.start()

                // Push → every pod ready, the Service answers, a status commit exists.
                var original = ""
                try await h.waitFor("web and worker ready") {
                    guard let hash = try h.rolledOut("web", replicas: 2), try h.rolledOut("worker", replicas: 1) != nil else { return false }
                    original = hash
                    return true
                }
                let ip = try h.clusterIP("web")
                #expect(try h.inNetns(["/usr/bin/curl", "-sf", "-m", "2", "http://\(ip)/index.html"]) == "hello")
                try await h.waitFor("a status commit with the rollout") {
                    (try? h.statusFile("default/Deployment/web.yaml"))?.contains("readyReplicas: 2") == true
                }
                #expect(try h.statusFile("cluster.yaml").contains("appliedCommit: \(first)"))
                try await h.waitFor("the rollout's outcome in the note") { (try? h.note(first))?.contains("rollout: healthy") == true }
                let metrics = try DaemonHarness.run(["/usr/bin/curl", "-sf", h.api + "/metrics"])
                #expect(metrics.contains("berth_applied_commit_info{commit=\"\(first)\"} 1"))
                #expect(metrics.contains("berth_reconcile_duration_seconds_count"))
                // Every series has its HELP, and pods that were bound were timed.
                let families = Set(metrics.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
                let helped = Set(metrics.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
                #expect(!families.isEmpty && families.isSubset(of: helped), "no HELP for \(families.subtracting(helped).sorted())")
                let bound = metrics.split(separator: "\n").first { $0.hasPrefix("berth_scheduling_latency_seconds_count") }
                #expect((bound?.split(separator: " ").last).flatMap { Double($0) } ?? 0 >= 2, "\(bound ?? "no scheduling latency")")
                #expect(try h.cli(["get", "pods"]).contains("Running"))

                // A new env → a rolling update; a client on the Service all along sees no failure.
                let stopClient = try h.client("http://\(ip)/index.html")
                let second = try h.ws.commit(["web.yaml": Manifests.web(version: "2")], in: h.work, message: "web: version 2")
                var updated = ""
                try await h.waitFor("the new revision rolled out") {
                    guard let hash = try h.rolledOut("web", replicas: 2), hash != original else { return false }
                    updated = hash
                    return true
                }
                try await Task.sleep(for: .seconds(1))
                let results = stopClient()
                let (failures, diagnostics) = failedRequests(results)
                #expect(failures.isEmpty, "\(failures.count) of \(results.count) requests failed during the rollout: \(failures)\n\(diagnostics)")
                #expect(results.count > 10)
                #expect((try h.get("/api/v1/status")["appliedCommit"] as? [String: Any])?["id"] as? String == second)
                try await h.waitFor("the status branch shows the new revision") {
                    (try? h.statusFile("default/Deployment/web.yaml"))?.contains("revisionHash: \"\(updated)\"") == true
                }

                // git revert → the previous revision's pods return.
                try h.ws.git(["revert", "--no-edit", "HEAD"], in: h.work)
                try h.ws.git(["push", "-q", "origin", "HEAD:refs/heads/main"], in: h.work)
                try await h.waitFor("the reverted revision") { try h.rolledOut("web", replicas: 2) == original }

                // A manifest removed → its objects are pruned.
                try h.ws.commit(["worker.yaml": nil], in: h.work, message: "remove the worker")
                try await h.waitFor("the worker pruned") {
                    try h.pods("worker").isEmpty && (try h.get("/api/v1/namespaces/default/deployments")["items"] as? [Any])?.count == 1
                }

                // A broken manifest → rejected, nothing running changes, the status and the note name path:line:col.
                let before = try h.pods().map(h.name).sorted()
                let broken = try h.ws.commit(["broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\nspam: 1\n"],
                                             in: h.work, message: "a broken manifest")
                try await h.waitFor("the commit rejected") { try h.get("/api/v1/status")["result"] as? String == "Rejected" }
                let findings = try h.get("/api/v1/status")["findings"] as? [[String: Any]] ?? []
                #expect(findings.contains { ($0["text"] as? String)?.hasPrefix("broken.yaml:7:1:") == true })
                try await h.waitFor("the rejection in the status branch") { (try? h.statusFile("cluster.yaml"))?.contains("broken.yaml:7:1") == true }
                try await h.waitFor("the rejection in the note") { (try? h.note(broken))?.contains("broken.yaml:7:1") == true }
                try await Task.sleep(for: .seconds(2))
                #expect(try h.pods().map(h.name).sorted() == before)
                #expect(try h.pods().allSatisfy(h.isReady))
                #expect(try h.cli(["history", "deployment/web"]).contains("version 2"))
            }
        }
    }

    @Suite struct Crashes {
        @Test(arguments: StoreBackend.allCases) func killedMidRolloutTheNextDaemonFinishesItWithoutDuplicatesOrRestarts(_ store: StoreBackend) async throws {
            try await DaemonHarness.with(store: store) { h in
                try h.ws.commit(["web.yaml": Manifests.web(replicas: 3, readinessDelay: 2)], in: h.work, message: "web")
                try h.start()
                var original = ""
                try await h.waitFor("web ready", timeout: 60) {
                    guard let hash = try h.rolledOut("web", replicas: 3) else { return false }
                    original = hash
                    return true
                }
                try h.ws.commit(["web.yaml": Manifests.web(replicas: 3, version: "2", readinessDelay: 2)], in: h.work, message: "web: version 2")
                // Mid-rollout: the first new pod is ready, old ones still run.
                try await h.waitFor("the rollout under way") {
                    let pods = try h.pods("web")
                    return pods.contains { h.hash($0) != original && h.isReady($0) } && pods.contains { h.hash($0) == original }
                }
                let healthy = Dictionary(uniqueKeysWithValues: try h.pods("web").filter(h.isReady).map { (h.name($0), h.startedAt($0)) })
                h.stop(SIGKILL)
                try await Task.sleep(for: .seconds(1.5))
                try h.start()
                try await h.waitFor("the rollout completed by the new daemon", timeout: 60) {
                    try h.rolledOut("web", replicas: 3).map { $0 != original } ?? false
                }
                // Listed after the rollout is seen complete: a list taken before it may still show an old pod going.
                let final = try h.pods("web")
                #expect(final.count == 3)
                #expect(Set(final.map(h.name)).count == 3)
                #expect(final.allSatisfy { h.restarts($0) == 0 })
                // New pods that were healthy before the kill are the same pods, never restarted, afterwards.
                let kept = final.filter { healthy[h.name($0)] != nil }
                #expect(!kept.isEmpty)
                for p in kept { #expect(h.startedAt(p) == healthy[h.name(p)], "\(h.name(p)) was started again") }
            }
        }

        @Test(arguments: StoreBackend.allCases) func anUnreachableRemoteLeavesWorkloadsAloneAndIsReportedUntilItRecovers(_ store: StoreBackend) async throws {
            try await DaemonHarness.with(store: store) { h in
                try h.ws.commit(["web.yaml": Manifests.web()], in: h.work, message: "web")
                try h.start()
                try await h.waitFor("web ready") { try h.rolledOut("web", replicas: 2) != nil }
                let before = try h.pods().map(h.name).sorted()
                h.gitServer?.stop()
                try await h.waitFor("the fetch error reported") { try h.get("/api/v1/status")["sourceError"] != nil }
                try await Task.sleep(for: .seconds(30))
                #expect(try h.pods().map(h.name).sorted() == before)
                #expect(try h.pods().allSatisfy { h.isReady($0) && h.restarts($0) == 0 })
                let ip = try h.clusterIP("web")
                #expect(try h.inNetns(["/usr/bin/curl", "-sf", "-m", "2", "http://\(ip)/index.html"]) == "hello")
                #expect(try h.cli(["status"]).contains("source error"))
                // A daemon restarted while the remote is down keeps the pods as they are.
                let running = try h.pods()
                let started = running.map(h.startedAt).sorted()
                h.stop(SIGKILL)
                try h.start()
                try await Task.sleep(for: .seconds(3))
                let adopted = try h.pods()
                // Each pod by name, start time and restarts, before and after: what differs when this fails.
                func listed(_ pods: [[String: Any]]) -> [String] { pods.map { "\(h.name($0)) \(h.startedAt($0)) \(h.restarts($0))" }.sorted() }
                #expect(adopted.map(h.startedAt).sorted() == started, "before: \(listed(running)); after: \(listed(adopted))")
                #expect(adopted.allSatisfy(h.isReady))

                h.gitServer = try h.ws.gitDaemon(port: h.gitPort)
                try h.ws.commit(["web.yaml": Manifests.web(page: "back")], in: h.work, message: "new page")
                // The backoff after 30 s of failures is at most 16 s.
                try await h.waitFor("recovery", timeout: 40) {
                    try h.get("/api/v1/status")["sourceError"] == nil
                        && (try? h.inNetns(["/usr/bin/curl", "-sf", "-m", "2", "http://\(ip)/index.html"])) == "back"
                }
            }
        }
    }

    @Suite struct SetUpFailures {
        /// As under `ip netns exec`, which mounts a fresh /sys: the daemon sees no cgroup. The pod says why
        /// it cannot start, in its status and in a Warning event, within a second or two of being placed,
        /// rather than ContainerCreating forever.
        @Test func aPodThatCannotBeSetUpSaysWhyAtOnce() async throws {
            try await DaemonHarness.with { h in
                // Its own mount namespace, gone with it: nothing on the host changes.
                h.launcher = ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                              "mount -t tmpfs berth-test /sys/fs/cgroup && exec \"$0\" \"$@\""]
                try h.ws.commit(["web.yaml": Manifests.web(replicas: 1)], in: h.work, message: "web")
                try h.start()
                var placed: Date?
                var status: [String: Any] = [:]
                try await h.waitFor("the pod's reason", timeout: 30) {
                    guard let pod = try h.pods("web").first, (pod["spec"] as? [String: Any])?["nodeName"] != nil else { return false }
                    placed = placed ?? Date()
                    status = pod["status"] as? [String: Any] ?? [:]
                    return status["reason"] != nil
                }
                let delay = Date().timeIntervalSince(try #require(placed))
                #expect(delay < 2, "the reason took \(delay) s to show")
                #expect(status["reason"] as? String == "FailedCreatePodSandBox")
                let message = status["message"] as? String ?? ""
                #expect(message.contains("/sys/fs/cgroup") && message.contains("No such file or directory"), "\(message)")
                let events = try h.get("/api/v1/namespaces/default/events")["items"] as? [[String: Any]] ?? []
                #expect(events.contains { $0["type"] as? String == "Warning" && $0["reason"] as? String == "FailedCreatePodSandBox"
                    && ($0["message"] as? String) == message })
            }
        }
    }

    @Suite struct Triggers {
        @Test(arguments: StoreBackend.allCases) func postReceiveHookAndSignedWebhooksSyncAtOnceUnsignedOnesDoNot(_ store: StoreBackend) async throws {
            try await DaemonHarness.with(store: store) { h in
                h.interval = "1h"
                try h.ws.commit(["web.yaml": Manifests.web(replicas: 1)], in: h.work, message: "web")
                try h.start()
                try await h.waitFor("the first sync") { try h.rolledOut("web", replicas: 1) != nil }

                // The post-receive hook of the repository tells the daemon (polling is hourly).
                let hooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent("hooks/post-receive").path
                try FileManager.default.copyItem(atPath: hooks, toPath: h.bare + "/hooks/post-receive")
                try h.ws.git(["config", "berth.url", h.api + "/api/v1/sync"], in: h.bare)
                try h.ws.git(["config", "berth.tokenFile", h.stateDir + "/api-token"], in: h.bare)
                let hooked = try h.ws.commit(["web.yaml": Manifests.web(replicas: 1, page: "hooked")], in: h.work, message: "via the hook")
                try await h.waitFor("the hook's sync", timeout: 5) {
                    (try h.get("/api/v1/status")["appliedCommit"] as? [String: Any])?["id"] as? String == hooked
                }

                // Without the token, no sync.
                #expect(try h.post("/api/v1/sync") == 401)
                #expect(try h.post("/api/v1/sync", headers: ["Authorization: Bearer wrong"]) == 401)

                // Webhooks: unsigned or wrongly signed → 401 and no sync; a signed push to main → sync.
                try h.ws.git(["config", "--unset", "berth.url"], in: h.bare)
                let pushed = try h.ws.commit(["web.yaml": Manifests.web(replicas: 1, page: "webhook")], in: h.work, message: "via a webhook")
                let payload = "{\"ref\":\"refs/heads/main\",\"after\":\"\(pushed)\"}"
                let syncs = try h.get("/api/v1/status")["syncs"] as? Int ?? 0
                #expect(try h.post("/api/v1/webhook", headers: ["X-GitHub-Event: push"], body: payload) == 401)
                #expect(try h.post("/api/v1/webhook", headers: ["X-GitHub-Event: push", "X-Hub-Signature-256: sha256=" + String(repeating: "0", count: 64)],
                                   body: payload) == 401)
                #expect(try h.post("/api/v1/webhook", headers: ["X-Gitlab-Token: guess", "X-Gitlab-Event: Push Hook"], body: payload) == 401)
                try await Task.sleep(for: .seconds(1))
                #expect(try h.get("/api/v1/status")["syncs"] as? Int == syncs)
                let mac = try DaemonHarness.run(["/usr/bin/python3", "-c",
                                                 "import hmac,hashlib,sys; print(hmac.new(b's3cret-hook', sys.stdin.buffer.read(), hashlib.sha256).hexdigest())"],
                                                stdin: payload).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(try h.post("/api/v1/webhook", headers: ["X-Gitea-Event: push", "X-Gitea-Signature: " + mac], body: payload) == 202)
                try await h.waitFor("the webhook's sync", timeout: 5) {
                    (try h.get("/api/v1/status")["appliedCommit"] as? [String: Any])?["id"] as? String == pushed
                }
                // A push to another branch is acknowledged and ignored.
                let other = payload.replacingOccurrences(of: "refs/heads/main", with: "refs/heads/dev")
                let otherMac = try DaemonHarness.run(["/usr/bin/python3", "-c",
                                                      "import hmac,hashlib,sys; print(hmac.new(b's3cret-hook', sys.stdin.buffer.read(), hashlib.sha256).hexdigest())"],
                                                     stdin: other).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(try h.post("/api/v1/webhook", headers: ["X-GitHub-Event: push", "X-Hub-Signature-256: sha256=" + otherMac], body: other) == 200)
            }
        }
    }
}
