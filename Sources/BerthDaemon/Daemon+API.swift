import BerthCluster
import BerthController
import BerthGit
import BerthModel
import BerthNode
import BerthSource
import BerthStatus
import Foundation

/// One consistent copy of what the API shows, taken inside the daemon and rendered outside it.
public struct APIState: Sendable {
    public var nodeName: String
    public var records: [PodRecord]
    public var podStatuses: [String: PodStatus]
    public var desired: DesiredState
    public var deployments: [ObjectKey: DeploymentStatus]
    public var jobs: [ObjectKey: JobStatus]
    public var cronJobRuns: [ObjectKey]
    public var clusterIPs: [ObjectKey: String]
    public var endpoints: [ObjectKey: EndpointsRecord]
    /// This machine's node as its agent sees it (`berth run`), and every node as registered in the store.
    public var node: NodeStatus?
    public var nodes: [NodeRecord]
    public var events: [Event]
    public var sync: SyncInfo
}

public struct SyncInfo: Sendable {
    public var repository: String
    public var ref: String
    public var path: String
    public var appliedCommit: CommitInfo?
    public var lastCommit: CommitInfo?
    public var result: ClusterStatus.SyncResult?
    public var findings: [Finding]
    public var sourceError: String?
    public var applyError: String?
    public var consecutiveFailures: Int
    public var syncs: Int
    public var statusBranch: String
    public var statusError: String?
    public var statusCommits: Int
    public var rolloutsInProgress: Int
    public var leading: Bool
}

extension Daemon {
    public func apiState() async -> APIState {
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
                        node: await node?.nodeStatus, nodes: await plane.nodeRecords, events: events.events, sync: await syncInfo())
    }

    public func syncInfo() async -> SyncInfo {
        SyncInfo(repository: config.source.access.redactedURL, ref: Daemon.refText(config.source.ref), path: config.source.path,
                 appliedCommit: appliedCommit, lastCommit: lastCommit, result: lastResult, findings: findings,
                 sourceError: sourceError, applyError: applyError, consecutiveFailures: await source.consecutiveFailures,
                 syncs: syncCount, statusBranch: config.status.branch, statusError: (await writer.lastError)?.message,
                 statusCommits: await writer.commitsMade, rolloutsInProgress: rollouts.count, leading: leading)
    }

    /// Ready once a commit was read (applied or rejected) and the node registered.
    public func isReady() async -> (Bool, String) {
        if let node, await node.nodeRecord == nil { return (false, "the node has not registered yet") }
        if !leading { return (false, "standing by: another berth instance leads") }
        if lastResult == nil { return (false, sourceError.map { "no commit read yet: \($0)" } ?? "no commit read yet") }
        return (true, "ok")
    }

    public func metricsText() -> String { metrics.text() }

    /// The log file of a container of a pod of this node.
    public func logFile(namespace: String, pod: String, container: String?, previous: Bool) async throws(QueryError) -> String {
        guard let record = records.first(where: { $0.namespace == namespace && $0.name == pod }) else {
            throw QueryError(.notFound, "pod \(namespace)/\(pod) not found")
        }
        let names = (record.spec.initContainers + record.spec.containers).map(\.name)
        let name: String
        if let container {
            guard names.contains(container) else {
                throw QueryError(.invalid, "container \(container) is not valid for pod \(pod): choose one of [\(names.joined(separator: " "))]")
            }
            name = container
        } else if record.spec.containers.count == 1 {
            name = record.spec.containers[0].name
        } else {
            throw QueryError(.invalid, "a container name must be specified for pod \(pod), choose one of: [\(names.joined(separator: " "))]")
        }
        guard record.nodeName == nodeName, let node,
              let path = await node.agent.logFile(namespace: namespace, name: pod, container: name, previous: previous) else {
            throw QueryError(.invalid, previous ? "previous terminated container \"\(name)\" in pod \"\(pod)\" not found"
                                                 : "container \"\(name)\" in pod \"\(pod)\" is waiting to start")
        }
        return path
    }

    public func podExists(namespace: String, name: String) -> Bool {
        records.contains { $0.namespace == namespace && $0.name == name }
    }

    /// The first-parent commits (newest first) from the applied one that changed `path`, with their notes.
    public func history(of key: ObjectKey, limit: Int = 50) async throws(QueryError) -> [HistoryEntry] {
        guard let origin = desired.objects[key]?.origin, let start = appliedCommit?.id else {
            throw QueryError(.notFound, "\(key) is not in the applied commit")
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
            throw QueryError(.failed, "cannot read the history of \(path): \(error)")
        }
    }
}

public struct HistoryEntry: Sendable, Codable {
    public var commit: String
    public var summary: String
    public var author: String
    public var time: Int64
    /// added, modified, deleted.
    public var change: String
    public var note: String?
}

/// Why a question to the daemon has no answer: nothing by that name, a question that does not make
/// sense, or a failure while answering (the HTTP API answers 404, 400 and 500).
public struct QueryError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case notFound, invalid, failed }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
