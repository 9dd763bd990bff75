import BerthModel

/// A Kubernetes-style event: what happened to an object, and why.
public struct Event: Sendable, Hashable, Codable {
    public struct Involved: Sendable, Hashable, Codable {
        public var kind: String
        public var namespace: String
        public var name: String
    }
    public var type: String
    public var reason: String
    public var message: String
    public var involvedObject: Involved
    public var count: Int
    public var firstTimestamp: Double
    public var lastTimestamp: Double
}

/// The newest events, in memory (as Kubernetes keeps them for an hour); a repeat of the newest event
/// about an object counts up instead of adding a line.
struct EventLog: Sendable {
    private(set) var events: [Event] = []
    let limit: Int

    init(limit: Int = 2000) { self.limit = limit }

    mutating func add(_ type: String = "Normal", _ reason: String, _ message: String,
                      kind: String, namespace: String, name: String, at now: Double) {
        let involved = Event.Involved(kind: kind, namespace: namespace, name: name)
        if let i = events.lastIndex(where: { $0.involvedObject == involved }),
           events[i].reason == reason, events[i].message == message {
            events[i].count += 1
            events[i].lastTimestamp = now
            return
        }
        events.append(Event(type: type, reason: reason, message: message, involvedObject: involved,
                            count: 1, firstTimestamp: now, lastTimestamp: now))
        if events.count > limit { events.removeFirst(events.count - limit) }
    }
}
