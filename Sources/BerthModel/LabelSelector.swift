/// A label selector: every matchLabels pair and every expression must hold.
public struct LabelSelector: Sendable, Hashable, Codable {
    public enum Operator: String, Sendable, Hashable, Codable, CaseIterable {
        case `in` = "In"
        case notIn = "NotIn"
        case exists = "Exists"
        case doesNotExist = "DoesNotExist"
    }

    public struct Requirement: Sendable, Hashable, Codable {
        public var key: String
        public var op: Operator
        public var values: [String]

        public init(key: String, op: Operator, values: [String] = []) {
            self.key = key
            self.op = op
            self.values = values
        }

        public func matches(_ labels: [String: String]) -> Bool {
            switch op {
            case .in: return labels[key].map(values.contains) ?? false
            case .notIn: return labels[key].map { !values.contains($0) } ?? true
            case .exists: return labels[key] != nil
            case .doesNotExist: return labels[key] == nil
            }
        }
    }

    public var matchLabels: [String: String]
    public var matchExpressions: [Requirement]

    public init(matchLabels: [String: String] = [:], matchExpressions: [Requirement] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// An empty selector selects nothing in berth (Kubernetes rejects it for workloads).
    public var isEmpty: Bool { matchLabels.isEmpty && matchExpressions.isEmpty }

    public func matches(_ labels: [String: String]) -> Bool {
        if isEmpty { return false }
        for (k, v) in matchLabels where labels[k] != v { return false }
        return matchExpressions.allSatisfy { $0.matches(labels) }
    }
}
