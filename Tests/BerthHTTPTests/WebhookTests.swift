import BerthSource
import Crypto
import HTTPTypes
import Testing
@testable import BerthHTTP

@Suite struct WebhookTests {
    let body = Array(#"{"ref":"refs/heads/main","after":"0123"}"#.utf8)
    let secret = "hook-secret"

    func hex(_ mac: some Sequence<UInt8>) -> String { mac.map { String(format: "%02x", $0) }.joined() }
    func sign(_ b: [UInt8]) -> String { hex(HMAC<SHA256>.authenticationCode(for: b, using: SymmetricKey(data: Array(secret.utf8)))) }
    func headers(_ fields: [(String, String)]) -> HTTPFields {
        var h = HTTPFields()
        for (k, v) in fields { h[HTTPField.Name(k)!] = v }
        return h
    }

    @Test func githubGiteaAndGitlabPushesToTheTrackedBranchSync() {
        let main = SourceRef.branch("main")
        #expect(Webhook.check(headers: headers([("X-Hub-Signature-256", "sha256=" + sign(body)), ("X-GitHub-Event", "push")]),
                              body: body, secret: secret, ref: main) == .sync("push to refs/heads/main: syncing"))
        #expect(Webhook.check(headers: headers([("X-Gitea-Signature", sign(body)), ("X-Gitea-Event", "push")]),
                              body: body, secret: secret, ref: main) == .sync("push to refs/heads/main: syncing"))
        #expect(Webhook.check(headers: headers([("X-Gitlab-Token", secret), ("X-Gitlab-Event", "Push Hook")]),
                              body: body, secret: secret, ref: main) == .sync("push to refs/heads/main: syncing"))
    }

    @Test func missingOrWrongSignaturesAreRefused() {
        let main = SourceRef.branch("main")
        let refused = { (o: Webhook.Outcome) -> Bool in if case .refused = o { return true } else { return false } }
        #expect(refused(Webhook.check(headers: headers([]), body: body, secret: secret, ref: main)))
        #expect(refused(Webhook.check(headers: headers([("X-Hub-Signature-256", "sha256=" + sign(body + [32]))]), body: body, secret: secret, ref: main)))
        #expect(refused(Webhook.check(headers: headers([("X-Hub-Signature-256", sign(body))]), body: body, secret: secret, ref: main)))
        #expect(refused(Webhook.check(headers: headers([("X-Gitea-Signature", "zz")]), body: body, secret: secret, ref: main)))
        #expect(refused(Webhook.check(headers: headers([("X-Gitlab-Token", secret + "x")]), body: body, secret: secret, ref: main)))
        // Without a configured secret nothing is accepted, signed or not.
        #expect(refused(Webhook.check(headers: headers([("X-Gitlab-Token", "")]), body: body, secret: nil, ref: main)))
    }

    @Test func otherRefsAndEventsAreIgnored() {
        let signed = headers([("X-Hub-Signature-256", "sha256=" + sign(body)), ("X-GitHub-Event", "push")])
        #expect(Webhook.check(headers: signed, body: body, secret: secret, ref: .branch("prod")) == .ignored("push to refs/heads/main, not the tracked branch prod"))
        let ping = headers([("X-Hub-Signature-256", "sha256=" + sign(body)), ("X-GitHub-Event", "ping")])
        #expect(Webhook.check(headers: ping, body: body, secret: secret, ref: .branch("main")) == .ignored("ping event: nothing to sync"))
        let garbage = Array("not json".utf8)
        #expect(Webhook.check(headers: headers([("X-Gitea-Signature", sign(garbage))]), body: garbage, secret: secret, ref: .branch("main"))
                == .ignored("the payload names no ref"))
    }
}
