import ArgumentParser
import Foundation

/// Where the CLI finds the daemon's API.
struct ServerOptions: ParsableArguments {
    @Option(help: "The berth API.")
    var server = "http://127.0.0.1:7420"

    func client() throws -> APIClient { try APIClient(server: server) }
}

/// Runs a client command; an API failure is one line on stderr and exit 1.
func clientRun(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as APIClient.Failure {
        StdStream.standardError.write("berth: \(e.description)\n")
        throw ExitCode(1)
    }
}

func printJSON(_ object: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    StdStream.standardOutput.write(String(decoding: data, as: UTF8.self) + "\n")
}

/// Columns padded to their widest cell, kubectl style.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i] + 3, withPad: " ", startingAt: 0) }.joined()
    }
    StdStream.standardOutput.write(([line(header)] + rows.map(line)).joined(separator: "\n") + "\n")
}

/// "5s", "3m", "2h", "4d" since a timestamp of the API.
func age(_ iso: Any?) -> String {
    guard let s = iso as? String, let date = ISO8601DateFormatter().date(from: s) else { return "-" }
    let t = Int(Date().timeIntervalSince(date))
    switch t {
    case ..<120: return "\(max(t, 0))s"
    case ..<7200: return "\(t / 60)m"
    case ..<172_800: return "\(t / 3600)h"
    default: return "\(t / 86400)d"
    }
}

extension Dictionary where Key == String, Value == Any {
    func obj(_ k: String) -> [String: Any] { self[k] as? [String: Any] ?? [:] }
    func arr(_ k: String) -> [[String: Any]] { self[k] as? [[String: Any]] ?? [] }
    func str(_ k: String) -> String { (self[k] as? String) ?? (self[k] as? NSNumber)?.stringValue ?? "" }
    func int(_ k: String) -> Int { (self[k] as? NSNumber)?.intValue ?? 0 }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "What the daemon applied, and how the last sync went.")
    @OptionGroup var server: ServerOptions
    @Option(name: .shortAndLong, help: "text or json.") var output = "text"

    func run() throws {
        try clientRun {
            let s = try server.client().json("/api/v1/status")
            if output == "json" { return printJSON(s) }
            let source = s.obj("source")
            var out = "source:   \(source.str("repository")) \(source.str("ref"))\(source.str("path").isEmpty ? "" : " (path \(source.str("path")))")\n"
            let applied = s.obj("appliedCommit")
            out += "applied:  \(applied.isEmpty ? "nothing yet" : "\(applied.str("id").prefix(7)) \(applied.str("summary"))")\n"
            let last = s.obj("lastCommit")
            if !last.isEmpty { out += "last:     \(last.str("id").prefix(7)) \(last.str("summary")): \(s.str("result"))\n" }
            if let e = s["sourceError"] as? String { out += "source error (\(s.int("consecutiveFailures")) in a row): \(e)\n" }
            if let e = s["applyError"] as? String { out += "not applied: \(e)\n" }
            if let e = s["statusError"] as? String { out += "status branch error: \(e)\n" }
            out += "rollouts in progress: \(s.int("rolloutsInProgress")); syncs: \(s.int("syncs")); status commits: \(s.int("statusCommits")) on \(s.str("statusBranch"))\n"
            for f in s.arr("findings") { out += "  \(f.str("text"))\n" }
            StdStream.standardOutput.write(out)
        }
    }
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "List pods, deployments, services, nodes, jobs or events.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "pods, deployments, services, nodes, jobs or events (singular and short forms too: po, deploy, svc, no).")
    var kind: String
    @Argument(help: "Only this object.") var name: String?
    @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
    @Flag(name: [.customShort("A"), .long], help: "Every namespace.") var allNamespaces = false
    @Option(name: .shortAndLong, help: "json (the API's JSON) or wide.") var output: String?

    static func resource(_ kind: String) throws -> String {
        let aliases = ["pod": "pods", "po": "pods", "pods": "pods", "deployment": "deployments", "deploy": "deployments",
                       "deployments": "deployments", "service": "services", "svc": "services", "services": "services",
                       "node": "nodes", "no": "nodes", "nodes": "nodes", "job": "jobs", "jobs": "jobs",
                       "event": "events", "ev": "events", "events": "events"]
        guard let r = aliases[kind.lowercased()] else {
            throw ValidationError("unknown kind \(kind): use pods, deployments, services, nodes, jobs or events")
        }
        return r
    }

    func run() throws {
        let resource = try GetCommand.resource(kind)
        try clientRun {
            let client = try server.client()
            let scope = resource == "nodes" || allNamespaces ? "" : "/namespaces/\(namespace)"
            var items: [[String: Any]]
            var whole: [String: Any]
            if let name {
                whole = try client.json("/api/v1\(scope)/\(resource)/\(name)")
                items = [whole]
            } else {
                whole = try client.json("/api/v1\(scope)/\(resource)")
                items = whole.arr("items")
            }
            if output == "json" { return printJSON(whole) }
            let wide = output == "wide"
            if items.isEmpty {
                StdStream.standardError.write(resource == "nodes" || allNamespaces ? "No resources found.\n" : "No resources found in \(namespace) namespace.\n")
                return
            }
            let ns = allNamespaces && resource != "nodes" ? ["NAMESPACE"] : []
            func nsCell(_ o: [String: Any]) -> [String] { ns.isEmpty ? [] : [o.obj("metadata").str("namespace")] }
            switch resource {
            case "pods":
                printTable(ns + ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] + (wide ? ["IP", "NODE"] : []), items.map { p in
                    let cs = p.obj("status").arr("containerStatuses")
                    let ready = cs.filter { $0["ready"] as? Bool == true }.count
                    let total = max(cs.count, p.obj("spec").arr("containers").count)
                    return nsCell(p) + [p.obj("metadata").str("name"), "\(ready)/\(total)", PodText.status(p),
                                        String(cs.reduce(0) { $0 + $1.int("restartCount") }), age(p.obj("metadata")["creationTimestamp"])]
                        + (wide ? [p.obj("status").str("podIP").isEmpty ? "<none>" : p.obj("status").str("podIP"),
                                   p.obj("spec").str("nodeName").isEmpty ? "<none>" : p.obj("spec").str("nodeName")] : [])
                })
            case "deployments":
                printTable(ns + ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"] + (wide ? ["REVISION", "SELECTOR"] : []), items.map { d in
                    let s = d.obj("status")
                    let selector = d.obj("spec").obj("selector").obj("matchLabels").map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
                    return nsCell(d) + [d.obj("metadata").str("name"), "\(s.int("readyReplicas"))/\(d.obj("spec").int("replicas"))",
                                        String(s.int("updatedReplicas")), String(s.int("availableReplicas"))]
                        + (wide ? [d.obj("metadata").obj("annotations").str("deployment.kubernetes.io/revision"), selector] : [])
                })
            case "services":
                printTable(ns + ["NAME", "TYPE", "CLUSTER-IP", "PORT(S)"] + (wide ? ["ENDPOINTS", "SELECTOR"] : []), items.map { s in
                    let spec = s.obj("spec")
                    let ports = spec.arr("ports").map { p in "\(p.int("port"))\(p["nodePort"] != nil ? ":\(p.int("nodePort"))" : "")/\(p.str("protocol"))" }
                    let endpoints = s.obj("status").arr("endpoints").map { $0.str("ip") }
                    let selector = spec.obj("selector").map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
                    return nsCell(s) + [s.obj("metadata").str("name"), spec.str("type"), spec.str("clusterIP").isEmpty ? "<pending>" : spec.str("clusterIP"),
                                        ports.joined(separator: ",")]
                        + (wide ? [endpoints.isEmpty ? "<none>" : endpoints.joined(separator: ","), selector] : [])
                })
            case "nodes":
                printTable(["NAME", "STATUS", "CPU", "MEMORY", "PODS"] + (wide ? ["INTERNAL-IP", "EXTENDED", "TAINTS", "LABELS"] : []), items.map { n in
                    let s = n.obj("status")
                    let ready = s.arr("conditions").first { $0.str("type") == "Ready" }?.str("status") == "True"
                    let a = s.obj("allocatable")
                    var status = ready ? "Ready" : "NotReady"
                    if n.obj("spec")["unschedulable"] as? Bool == true { status += ",SchedulingDisabled" }
                    let standard: Set<String> = ["cpu", "memory", "pods"]
                    let extended = a.filter { !standard.contains($0.key) }.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
                    let taints = n.obj("spec").arr("taints").map { t in
                        t.str("key") + (t.str("value").isEmpty ? "" : "=" + t.str("value")) + ":" + t.str("effect")
                    }.joined(separator: ",")
                    let labels = n.obj("metadata").obj("labels").map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
                    let address = s.arr("addresses").first { $0.str("type") == "InternalIP" }?.str("address") ?? ""
                    return [n.obj("metadata").str("name"), status, a.str("cpu"), a.str("memory"), a.str("pods")]
                        + (wide ? [address.isEmpty ? "<none>" : address, extended.isEmpty ? "<none>" : extended,
                                   taints.isEmpty ? "<none>" : taints, labels] : [])
                })
            case "jobs":
                printTable(ns + ["NAME", "COMPLETIONS", "ACTIVE", "STATUS"], items.map { j in
                    let s = j.obj("status")
                    let done = s.arr("conditions").first { $0.str("status") == "True" }?.str("type") ?? (s.int("active") > 0 ? "Running" : "Pending")
                    let completions = j.obj("spec")["completions"] as? NSNumber
                    return nsCell(j) + [j.obj("metadata").str("name"), "\(s.int("succeeded"))/\(completions?.intValue ?? 1)", String(s.int("active")), done]
                })
            default:
                printTable(ns + ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], items.map { e in
                    let o = e.obj("involvedObject")
                    return nsCell(e) + [age(e["lastTimestamp"]), e.str("type"), e.str("reason"), "\(o.str("kind").lowercased())/\(o.str("name"))",
                                        e.str("message") + (e.int("count") > 1 ? " (x\(e.int("count")))" : "")]
                })
            }
        }
    }
}

/// How kubectl sums up a pod's state in one word.
enum PodText {
    static func status(_ p: [String: Any]) -> String {
        if p.obj("metadata")["deletionTimestamp"] != nil { return "Terminating" }
        let status = p.obj("status")
        for c in status.arr("initContainerStatuses") {
            if let w = c.obj("state")["waiting"] as? [String: Any], w.str("reason") != "PodInitializing" { return "Init:" + w.str("reason") }
            if c.obj("state")["running"] != nil { return "Init:Running" }
        }
        for c in status.arr("containerStatuses") {
            if let w = c.obj("state")["waiting"] as? [String: Any], w.str("reason") != "ContainerCreating" || status.str("phase") != "Running" {
                return w.str("reason")
            }
            if let t = c.obj("state")["terminated"] as? [String: Any], status.str("phase") == "Running" { return t.str("reason") }
        }
        if status.arr("conditions").contains(where: { $0.str("type") == "PodScheduled" && $0.str("status") == "False" }) { return "Pending" }
        if let reason = status["reason"] as? String, status.str("phase") == "Pending" { return reason }
        if status.str("phase") == "Succeeded" { return "Completed" }
        if status.str("phase") == "Failed" { return "Error" }
        return status.str("phase")
    }
}
