import BerthSource
import Crypto
import Foundation
import HTTPTypes

/// Push webhooks from GitHub (`X-Hub-Signature-256: sha256=<hex>`), Gitea (`X-Gitea-Signature: <hex>`), both
/// HMAC-SHA256 of the body, and GitLab (`X-Gitlab-Token: <secret>`). Only a verified push to the tracked
/// ref makes a sync.
enum Webhook {
    enum Outcome: Equatable {
        case refused(String)
        case ignored(String)
        case sync(String)
    }

    static func check(headers: HTTPFields, body: [UInt8], secret: String?, ref: SourceRef) -> Outcome {
        func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }
        guard let secret, !secret.isEmpty else {
            return .refused("webhooks are off: berth run was started without --webhook-secret-file")
        }
        let key = SymmetricKey(data: Array(secret.utf8))
        let event: String?
        if let signature = header("X-Hub-Signature-256") {
            guard signature.hasPrefix("sha256="), let mac = hexBytes(signature.dropFirst(7)),
                  HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key) else {
                return .refused("X-Hub-Signature-256 does not match the payload and the webhook secret")
            }
            event = header("X-GitHub-Event")
        } else if let signature = header("X-Gitea-Signature") {
            guard let mac = hexBytes(signature[...]), HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key) else {
                return .refused("X-Gitea-Signature does not match the payload and the webhook secret")
            }
            event = header("X-Gitea-Event")
        } else if let token = header("X-Gitlab-Token") {
            guard constantTimeEqual(Array(token.utf8), Array(secret.utf8)) else {
                return .refused("X-Gitlab-Token is not the webhook secret")
            }
            event = header("X-Gitlab-Event").map { $0 == "Push Hook" || $0 == "Tag Push Hook" ? "push" : $0 }
        } else {
            return .refused("no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token header")
        }
        if let event, event != "push" { return .ignored("\(event) event: nothing to sync") }
        guard let payload = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let pushed = payload["ref"] as? String else {
            return .ignored("the payload names no ref")
        }
        switch ref {
        case .branch(let b) where pushed == "refs/heads/" + b: return .sync("push to \(pushed): syncing")
        case .tag(let t) where pushed == "refs/tags/" + t: return .sync("push to \(pushed): syncing")
        default: return .ignored("push to \(pushed), not the tracked \(ref)")
        }
    }

    static func hexBytes(_ s: Substring) -> [UInt8]? {
        guard s.count % 2 == 0, s.count <= 256 else { return nil }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }

    /// Compares secrets without leaking where they differ through timing.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
