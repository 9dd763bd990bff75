import BerthCluster
import BerthController
import BerthGit
import BerthModel
import BerthNode
import BerthSource
import BerthStatus
import Foundation

/// One consistent copy of what the API shows, taken inside the daemon and rendered outside it.
struct APIState: Sendable {
    var nodeName: String
    var records: [PodRecord]
    var podStatuses: [String: PodStatus]
    var desired: DesiredState
    var deployments: [ObjectKey: DeploymentStatus]
    var jobs: [ObjectKey: JobStatus]
    var cronJobRuns: [ObjectKey]
    var clusterIPs: [ObjectKey: String]
    var endpoints: [ObjectKey: EndpointsRecord]
    var node: NodeStatus?
    var nodeRecord: NodeRecord?
    var events: [Event]
    var sync: SyncInfo
}

struct SyncInfo: Sendable {
    var repository: String
    var ref: String
    var path: String
    var appliedCommit: CommitInfo?
    var lastCommit: CommitInfo?
    var result: ClusterStatus.SyncResult?
    var findings: [Finding]
    var sourceError: String?
    var applyError: String?
    var consecutiveFailures: Int
    var syncs: Int
    var statusBranch: String
    var statusError: String?
    var statusCommits: Int
    var rolloutsInProgress: Int
    var leading: Bool
}

extension Daemon {
    func apiState() async -> APIState {
        var deployments: [ObjectKey: DeploymentStatus] = [:]
        var jobs: [ObjectKey: JobStatus] = [:]
        var ips: [ObjectKey: String] = [:]
        var endpoints: [ObjectKey: EndpointsRecord] = [:]
        let runs = await plane.cronJobRunKeys
        for key in desired.objects.keys {
            switch key.kind {
            case .deployment: deployments[key] = await plane.status(of: key)
            case .job: jobs[key] = await plane.jobStatus(of: key)
            case .service:
                ips[key] = await plane.service(key)?.clusterIP
                endpoints[key] = await plane.endpoints(of: key)
            default: break
            }
        }
        for key in runs { jobs[key] = await plane.jobStatus(of: key) }
        return APIState(nodeName: nodeName, records: records, podStatuses: reportedStatuses, desired: desired,
                        deployments: deployments, jobs: jobs, cronJobRuns: runs, clusterIPs: ips, endpoints: endpoints,
                        node: await node.nodeStatus, nodeRecord: await node.nodeRecord, events: events.events, sync: await syncInfo())
    }

    func syncInfo() async -> SyncInfo {
        SyncInfo(repository: config.source.access.redactedURL, ref: Daemon.refText(config.source.ref), path: config.source.path,
                 appliedCommit: appliedCommit, lastCommit: lastCommit, result: lastResult, findings: findings,
                 sourceError: sourceError, applyError: applyError, consecutiveFailures: await source.consecutiveFailures,
                 syncs: syncCount, statusBranch: config.status.branch, statusError: (await writer.lastError)?.message,
                 statusCommits: await writer.commitsMade, rolloutsInProgress: rollouts.count, leading: leading)
    }

    /// Ready once a commit was read (applied or rejected) and the node registered.
    func isReady() async -> (Bool, String) {
        if await node.nodeRecord == nil { return (false, "the node has not registered yet") }
        if !leading { return (false, "standing by: another berth instance leads") }
        if lastResult == nil { return (false, sourceError.map { "no commit read yet: \($0)" } ?? "no commit read yet") }
        return (true, "ok")
    }

    func metricsText() -> String { metrics.text() }

    /// The log file of a container of a pod of this node.
    func logFile(namespace: String, pod: String, container: String?, previous: Bool) async throws(APIError) -> String {
        guard let record = records.first(where: { $0.namespace == namespace && $0.name == pod }) else {
            throw APIError(.notFound, "pod \(namespace)/\(pod) not found")
        }
        let names = (record.spec.initContainers + record.spec.containers).map(\.name)
        let name: String
        if let container {
            guard names.contains(container) else {
                throw APIError(.badRequest, "container \(container) is not valid for pod \(pod): choose one of [\(names.joined(separator: " "))]")
            }
            name = container
        } else if record.spec.containers.count == 1 {
            name = record.spec.containers[0].name
        } else {
            throw APIError(.badRequest, "a container name must be specified for pod \(pod), choose one of: [\(names.joined(separator: " "))]")
        }
        guard record.nodeName == nodeName,
              let path = await node.agent.logFile(namespace: namespace, name: pod, container: name, previous: previous) else {
            throw APIError(.badRequest, previous ? "previous terminated container \"\(name)\" in pod \"\(pod)\" not found"
                                                 : "container \"\(name)\" in pod \"\(pod)\" is waiting to start")
        }
        return path
    }

    func podExists(namespace: String, name: String) -> Bool {
        records.contains { $0.namespace == namespace && $0.name == name }
    }

    /// The first-parent commits (newest first) from the applied one that changed `path`, with their notes.
    func history(of key: ObjectKey, limit: Int = 50) async throws(APIError) -> [HistoryEntry] {
        guard let origin = desired.objects[key]?.origin, let start = appliedCommit?.id else {
            throw APIError(.notFound, "\(key) is not in the applied commit")
        }
        let path = origin.path
        let notesRef = config.status.notesRef
        do {
            return try await source.withRepository { repo in
                var out: [HistoryEntry] = []
                var next: ObjectID? = start
                var walked = 0
                while let id = next, out.count < limit, walked < 5000 {
                    walked += 1
                    let info = try repo.commitInfo(id)
                    let parentTree = try info.parents.first.map { try repo.commitInfo($0).tree }
                    let changes = try repo.changedPaths(from: parentTree, to: info.tree)
                    if let c = changes.first(where: { $0.path == path }) {
                        out.append(HistoryEntry(commit: info.id.hex, summary: info.summary, author: info.authorName, time: info.time,
                                                change: c.status.rawValue, note: repo.note(on: id, ref: notesRef)))
                    }
                    next = info.parents.first
                }
                return out
            }
        } catch {
            throw APIError(.internalServerError, "cannot read the history of \(path): \(error)")
        }
    }
}

struct HistoryEntry: Sendable, Codable {
    var commit: String
    var summary: String
    var author: String
    var time: Int64
    /// added, modified, deleted.
    var change: String
    var note: String?
}
