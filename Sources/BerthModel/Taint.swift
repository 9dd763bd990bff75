/// A node taint: pods without a matching toleration keep off (or prefer to, or are evicted).
public struct Taint: Sendable, Hashable, Codable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var effect: Toleration.Effect

    public init(key: String, value: String = "", effect: Toleration.Effect) {
        self.key = key
        self.value = value
        self.effect = effect
    }

    /// `key[=value]:Effect`, as `berth agent --taint` takes it.
    public var description: String { key + (value.isEmpty ? "" : "=" + value) + ":" + effect.rawValue }

    public func tolerated(by tolerations: [Toleration]) -> Bool {
        tolerations.contains { t in
            if let e = t.effect, e != effect { return false }
            guard let k = t.key, !k.isEmpty else { return t.op == .exists }
            guard k == key else { return false }
            return t.op == .exists || (t.value ?? "") == value
        }
    }
}
