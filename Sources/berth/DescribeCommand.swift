import ArgumentParser
import Foundation

struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe",
                                                    abstract: "Show one object in detail with its events: why a pod is pending or restarting, how a rollout goes.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "pod, deployment, service, node or job (or KIND/NAME).") var kind: String
    @Argument(help: "The object's name.") var name: String?
    @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"

    func run() throws {
        var kind = self.kind, name = self.name
        if name == nil, let slash = kind.firstIndex(of: "/") {
            name = String(kind[kind.index(after: slash)...])
            kind = String(kind[..<slash])
        }
        guard let name else { throw ValidationError("describe needs KIND NAME") }
        let resource = try GetCommand.resource(kind)
        try clientRun {
            let client = try server.client()
            let scope = resource == "nodes" ? "" : "/namespaces/\(namespace)"
            let o = try client.json("/api/v1\(scope)/\(resource)/\(name)")
            var out = "Name:        \(name)\n"
            if resource != "nodes" { out += "Namespace:   \(namespace)\n" }
            let labels = o.obj("metadata").obj("labels").map { "\($0.key)=\($0.value)" }.sorted()
            out += "Labels:      \(labels.isEmpty ? "<none>" : labels.joined(separator: "\n             "))\n"
            let spec = o.obj("spec"), status = o.obj("status")
            switch resource {
            case "pods": out += DescribeCommand.pod(o)
            case "deployments":
                out += "Replicas:    \(spec.int("replicas")) desired | \(status.int("updatedReplicas")) updated | \(status.int("replicas")) total | "
                    + "\(status.int("availableReplicas")) available | \(status.int("unavailableReplicas")) unavailable\n"
                out += "Revision:    \(o.obj("metadata").obj("annotations").str("deployment.kubernetes.io/revision")) (pod-template-hash \(status.str("revisionHash")))\n"
                out += "Strategy:    \(spec.obj("strategy").str("type"))\n"
                out += DescribeCommand.conditions(status.arr("conditions"))
            case "services":
                out += "Type:        \(spec.str("type"))\nIP:          \(spec.str("clusterIP"))\n"
                for p in spec.arr("ports") { out += "Port:        \(p.str("name").isEmpty ? "<unset>" : p.str("name")) \(p.int("port"))/\(p.str("protocol")) → \(p.str("targetPort"))\n" }
                let eps = status.arr("endpoints").map { $0.str("ip") }
                out += "Endpoints:   \(eps.isEmpty ? "<none> (no ready pod matches the selector)" : eps.joined(separator: ","))\n"
            case "nodes":
                for c in status.arr("conditions") { out += "Condition:   \(c.str("type"))=\(c.str("status"))\n" }
                out += "Capacity:    cpu \(status.obj("capacity").str("cpu")), memory \(status.obj("capacity").str("memory")), pods \(status.obj("capacity").str("pods"))\n"
                out += "Allocatable: cpu \(status.obj("allocatable").str("cpu")), memory \(status.obj("allocatable").str("memory")), pods \(status.obj("allocatable").str("pods"))\n"
            case "jobs":
                out += "Pods:        \(status.int("active")) active / \(status.int("succeeded")) succeeded / \(status.int("failed")) failed\n"
                out += DescribeCommand.conditions(status.arr("conditions"))
            default: break
            }
            let kindName = o.str("kind")
            let events = try client.json("/api/v1\(resource == "nodes" ? "" : "/namespaces/\(namespace)")/events").arr("items").filter {
                let i = $0.obj("involvedObject")
                return i.str("name") == name && i.str("kind") == kindName
            }
            out += "Events:"
            if events.isEmpty {
                out += "      <none>\n"
            } else {
                out += "\n"
                StdStream.standardOutput.write(out)
                out = ""
                printTable(["  TYPE", "REASON", "AGE", "MESSAGE"], events.map {
                    ["  " + $0.str("type"), $0.str("reason"), age($0["lastTimestamp"]), $0.str("message") + ($0.int("count") > 1 ? " (x\($0.int("count")))" : "")]
                })
            }
            StdStream.standardOutput.write(out)
        }
    }

    static func conditions(_ cs: [[String: Any]]) -> String {
        guard !cs.isEmpty else { return "" }
        return "Conditions:\n" + cs.map { "  \($0.str("type"))=\($0.str("status")) \($0.str("reason")): \($0.str("message"))\n" }.joined()
    }

    static func pod(_ p: [String: Any]) -> String {
        let spec = p.obj("spec"), status = p.obj("status")
        var out = "Node:        \(spec.str("nodeName").isEmpty ? "<none>" : spec.str("nodeName"))\n"
        out += "Status:      \(PodText.status(p))\n"
        out += "IP:          \(status.str("podIP").isEmpty ? "<none>" : status.str("podIP"))\n"
        let owner = p.obj("metadata").arr("ownerReferences").first
        if let owner { out += "Controlled By: \(owner.str("kind"))/\(owner.str("name"))\n" }
        if let reason = status["reason"] as? String { out += "Reason:      \(reason)\n" }
        if let message = status["message"] as? String { out += "Message:     \(message)\n" }
        for c in status.arr("conditions") where c.str("status") == "False" && c["message"] != nil {
            out += "Why \(c.str("type")) is False: \(c.str("message"))\n"
        }
        func container(_ c: [String: Any]) -> String {
            var t = "  \(c.str("name")):\n    Image:         \(c.str("image"))\n"
            t += "    State:         \(state(c.obj("state")))\n"
            if !c.obj("lastState").isEmpty { t += "    Last State:    \(state(c.obj("lastState")))\n" }
            t += "    Ready:         \(c["ready"] as? Bool == true)\n    Restart Count: \(c.int("restartCount"))\n"
            return t
        }
        if !status.arr("initContainerStatuses").isEmpty { out += "Init Containers:\n" + status.arr("initContainerStatuses").map(container).joined() }
        out += "Containers:\n" + status.arr("containerStatuses").map(container).joined()
        if status.arr("containerStatuses").isEmpty {
            out += spec.arr("containers").map { "  \($0.str("name")): not started\n" }.joined()
        }
        out += "Conditions:\n" + status.arr("conditions").map { "  \($0.str("type"))=\($0.str("status"))\($0["reason"] != nil ? " (\($0.str("reason")))" : "")\n" }.joined()
        return out
    }

    static func state(_ s: [String: Any]) -> String {
        if let w = s["waiting"] as? [String: Any] { return "Waiting: \(w.str("reason"))\(w["message"] != nil ? ": \(w.str("message"))" : "")" }
        if let r = s["running"] as? [String: Any] { return "Running since \(r.str("startedAt"))" }
        if let t = s["terminated"] as? [String: Any] { return "Terminated: \(t.str("reason")) (exit code \(t.int("exitCode"))) at \(t.str("finishedAt"))" }
        return "unknown"
    }
}

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a container's log.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The pod.") var pod: String
    @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
    @Option(name: .shortAndLong, help: "Container (needed when the pod has several).") var container: String?
    @Flag(name: .shortAndLong, help: "Keep printing what the container writes.") var follow = false
    @Flag(name: .shortAndLong, help: "The previous run's log, after a restart.") var previous = false

    func run() throws {
        var query = "follow=\(follow)&previous=\(previous)"
        if let container { query += "&container=\(container.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? container)" }
        let path = "/api/v1/namespaces/\(namespace)/pods/\(pod)/log?\(query)"
        try clientRun {
            var errorBody: [UInt8] = []
            let code = try server.client().get(path) { code, chunk in
                if code == 200 { StdStream.standardOutput.write(String(decoding: chunk, as: UTF8.self)) } else { errorBody.append(contentsOf: chunk) }
            }
            if code != 200 { throw APIClient.Failure(code: code, body: errorBody, path: path) }
        }
    }
}

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history",
                                                    abstract: "The commits that changed a Deployment's manifest, and what became of each.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "deployment/NAME") var target: String
    @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
    @Option(name: .shortAndLong, help: "text or json.") var output = "text"

    func run() throws {
        let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, ["deployment", "deployments", "deploy"].contains(parts[0].lowercased()) else {
            throw ValidationError("history takes deployment/NAME")
        }
        try clientRun {
            let data = try server.client().data("/api/v1/namespaces/\(namespace)/deployments/\(parts[1])/history")
            let entries = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] ?? []
            if output == "json" { return printJSON(entries) }
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd HH:mm"
            printTable(["COMMIT", "DATE", "CHANGE", "OUTCOME", "SUMMARY"], entries.map { e in
                let note = e.str("note")
                let lines = note.split(separator: "\n").map(String.init)
                var outcome = lines.first.map { $0.replacingOccurrences(of: "berth: ", with: "") } ?? "not reconciled"
                if let rollout = lines.first(where: { $0.hasPrefix("rollout: ") }) { outcome += ", " + rollout }
                return [String(e.str("commit").prefix(7)), f.string(from: Date(timeIntervalSince1970: Double(e.int("time")))),
                        e.str("change"), outcome, e.str("summary")]
            })
        }
    }
}
