import BerthModel
import Foundation

/// The revision of a pod template: a stable hash of its canonical JSON, so that a template equal to an
/// earlier one (after `git revert`) maps to the same revision and the same pod names.
public enum TemplateHash {
    public static func of(_ template: PodTemplateSpec) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(template)) ?? Data()
        var h: UInt64 = 0xcbf29ce484222325
        for b in data { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        // Kubernetes' alphabet for hashes: no vowels, no digits that read as letters.
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        var out = ""
        for _ in 0..<10 {
            out.append(alphabet[Int(h % UInt64(alphabet.count))])
            h /= UInt64(alphabet.count)
        }
        return out
    }
}
