import BerthCluster
import BerthDaemon
import BerthModel
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// An API error: the HTTP status and a message for the user (rendered as a Kubernetes Status object).
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { message }

    init(_ e: QueryError) {
        switch e.kind {
        case .notFound: self.init(.notFound, e.message)
        case .invalid: self.init(.badRequest, e.message)
        case .failed: self.init(.internalServerError, e.message)
        }
    }
}

/// The HTTP API (DESIGN §7): health, metrics, Kubernetes-shaped reads, logs, sync and webhooks.
public enum APIServer {
    static let maxBody = 4 << 20

    static func router(daemon: Daemon) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let (ready, why) = await daemon.isReady()
            return text(ready ? .ok : .serviceUnavailable, why + "\n")
        }
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: await daemon.metricsText())))
        }
        router.get("/api/v1/status") { _, _ in json(KubeJSON.status(await daemon.syncInfo())) }
        for kind in Resource.allCases {
            router.get("/api/v1/\(kind.rawValue)") { _, _ in json(kind.list(await daemon.apiState(), namespace: nil)) }
            router.get("/api/v1/namespaces/:ns/\(kind.rawValue)") { _, ctx in
                json(kind.list(await daemon.apiState(), namespace: ctx.parameters.get("ns")))
            }
            router.get("/api/v1/namespaces/:ns/\(kind.rawValue)/:name") { _, ctx in
                try await handle { () throws(APIError) in
                    try json(kind.one(await daemon.apiState(), namespace: ctx.parameters.get("ns") ?? "", name: ctx.parameters.get("name") ?? ""))
                }
            }
        }
        router.get("/api/v1/nodes/:name") { _, ctx in
            try await handle { () throws(APIError) in
                try json(Resource.nodes.one(await daemon.apiState(), namespace: "", name: ctx.parameters.get("name") ?? ""))
            }
        }
        router.get("/api/v1/namespaces/:ns/deployments/:name/history") { _, ctx in
            try await handle { () throws(APIError) in
                let key = ObjectKey(kind: .deployment, namespace: ctx.parameters.get("ns") ?? "", name: ctx.parameters.get("name") ?? "")
                let entries: [HistoryEntry]
                do throws(QueryError) { entries = try await daemon.history(of: key) } catch { throw APIError(error) }
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(data: (try? JSONEncoder().encode(entries)) ?? Data("[]".utf8))))
            }
        }
        router.get("/api/v1/namespaces/:ns/pods/:name/log") { request, ctx in
            try await handle { () throws(APIError) in
                try await log(daemon, request, namespace: ctx.parameters.get("ns") ?? "", pod: ctx.parameters.get("name") ?? "")
            }
        }
        router.post("/api/v1/sync") { request, _ -> Response in
            if let refused = unauthorized(request, daemon) { return refused }
            daemon.requestSync()
            return status(.accepted, "sync requested")
        }
        for action in [Daemon.NodeAction.cordon, .drain, .uncordon] {
            router.post("/api/v1/nodes/:name/\(action.rawValue)") { request, ctx -> Response in
                if let refused = unauthorized(request, daemon) { return refused }
                let name = ctx.parameters.get("name") ?? ""
                do throws(QueryError) { try await daemon.act(action, on: name) } catch { return status(APIError(error).status, error.message) }
                return status(.ok, "node \(name) \(action == .drain ? "draining" : action.rawValue + "ed")")
            }
        }
        router.delete("/api/v1/nodes/:name") { request, ctx -> Response in
            if let refused = unauthorized(request, daemon) { return refused }
            let name = ctx.parameters.get("name") ?? ""
            do throws(QueryError) { try await daemon.removeNode(name) } catch { return status(APIError(error).status, error.message) }
            return status(.ok, "node \(name) removed")
        }
        router.post("/api/v1/token/rotate") { request, _ -> Response in
            if let refused = unauthorized(request, daemon) { return refused }
            guard try await daemon.store.get(ClusterKey.clusterSecrets.path) != nil else {
                return status(.notFound, "no join token here: agents join berth server, not berth run")
            }
            let ca = try await ClusterCA.rotateJoinSecret(in: daemon.store)
            return json(["kind": "JoinToken", "token": ca.joinToken.description])
        }
        router.post("/api/v1/webhook") { request, ctx -> Response in
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: maxBody)
            } catch {
                return status(.contentTooLarge, "the payload is larger than \(maxBody >> 20) MiB")
            }
            let outcome = Webhook.check(headers: request.headers, body: Array(buffer: body),
                                        secret: daemon.config.webhookSecret, ref: daemon.config.source.ref)
            switch outcome {
            case .refused(let why):
                ctx.logger.warning("webhook refused: \(why)")
                return status(.unauthorized, why)
            case .ignored(let why):
                return status(.ok, why)
            case .sync(let why):
                daemon.requestSync()
                return status(.accepted, why)
            }
        }
        return router
    }

    /// A refusal unless the request carries the API token (`Authorization: Bearer TOKEN`).
    static func unauthorized(_ request: Request, _ daemon: Daemon) -> Response? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              Webhook.constantTimeEqual(Array(header.dropFirst(7).utf8), Array(daemon.config.token.utf8)) else {
            return status(.unauthorized, "a valid bearer token is needed (the --token-file of berth run or berth server, default STATE_DIR/api-token)")
        }
        return nil
    }

    static func handle(_ body: () async throws(APIError) -> Response) async throws -> Response {
        do {
            return try await body()
        } catch {
            return status(error.status, error.message)
        }
    }

    static func json(_ object: KubeJSON.Object) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: KubeJSON.data(object))))
    }

    static func text(_ s: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: s, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// A Kubernetes `Status` object.
    static func status(_ s: HTTPResponse.Status, _ message: String) -> Response {
        let object: KubeJSON.Object = ["kind": "Status", "apiVersion": "v1", "status": s.code < 300 ? "Success" : "Failure",
                                       "message": message, "code": s.code]
        return Response(status: s, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: KubeJSON.data(object))))
    }

    /// The container's log; `follow=true` keeps sending what is appended until the pod goes or the client leaves.
    static func log(_ daemon: Daemon, _ request: Request, namespace: String, pod: String) async throws(APIError) -> Response {
        let q = request.uri.queryParameters
        let container = q["container"].map(String.init)
        let follow = q["follow"] == "true" || q["follow"] == "1"
        let previous = q["previous"] == "true" || q["previous"] == "1"
        let path: String
        do throws(QueryError) { path = try await daemon.logFile(namespace: namespace, pod: pod, container: container, previous: previous) } catch { throw APIError(error) }
        let headers: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
        guard follow else {
            guard let data = FileManager.default.contents(atPath: path) else { throw APIError(.notFound, "no log for \(pod)") }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
        }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var offset: UInt64 = 0
            while !Task.isCancelled {
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
                if size < offset { offset = 0 }  // rotated
                // Opened for each read: rotation replaces the file.
                if size > offset, let handle = FileHandle(forReadingAtPath: path) {
                    defer { try? handle.close() }
                    try handle.seek(toOffset: offset)
                    let chunk = handle.readData(ofLength: Int(min(size - offset, 1 << 20)))
                    offset += UInt64(chunk.count)
                    try await writer.write(ByteBuffer(data: chunk))
                    continue
                }
                guard await daemon.podExists(namespace: namespace, name: pod) else { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        })
    }
}

extension APIServer {
    /// The HTTP server over the daemon, first in the ServiceGroup so that it stops last.
    public static func service(for daemon: Daemon, logger: Logger) -> any ServiceLifecycle.Service {
        Application(router: router(daemon: daemon),
                    configuration: .init(address: .hostname(daemon.config.listenHost, port: daemon.config.listenPort), serverName: "berth"),
                    logger: logger)
    }
}
