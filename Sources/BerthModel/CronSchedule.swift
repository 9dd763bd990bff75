
/// A standard five-field cron schedule (minute hour day-of-month month day-of-week) or a macro
/// such as `@hourly`, as Kubernetes' CronJob accepts it.
public struct CronSchedule: Sendable, Hashable {
    public let minutes: Set<Int>
    public let hours: Set<Int>
    public let daysOfMonth: Set<Int>
    public let months: Set<Int>
    /// 0 = Sunday; 7 is folded into 0.
    public let daysOfWeek: Set<Int>
    /// Kubernetes (like cron) runs when either day field matches if both are restricted.
    public let dayOfMonthRestricted: Bool
    public let dayOfWeekRestricted: Bool

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(parsing text: String) throws(ParseError) {
        var spec = text.trimmed()
        if spec.hasPrefix("TZ=") || spec.hasPrefix("CRON_TZ=") {
            throw ParseError(message: "time zones in the schedule are not supported; use UTC times")
        }
        if spec.hasPrefix("@") {
            guard let expanded = CronSchedule.macros[spec.lowercased()] else {
                throw ParseError(message: "unknown schedule macro \"\(spec)\"; use @yearly, @monthly, @weekly, @daily or @hourly")
            }
            spec = expanded
        }
        let fields = spec.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(message: "schedule \"\(text)\" must have 5 fields (minute hour day-of-month month day-of-week), not \(fields.count)")
        }
        minutes = try CronSchedule.field(fields[0], name: "minute", range: 0...59, names: [])
        hours = try CronSchedule.field(fields[1], name: "hour", range: 0...23, names: [])
        daysOfMonth = try CronSchedule.field(fields[2], name: "day of month", range: 1...31, names: [])
        months = try CronSchedule.field(fields[3], name: "month", range: 1...12, names: CronSchedule.monthNames, nameBase: 1)
        var dow = try CronSchedule.field(fields[4], name: "day of week", range: 0...7, names: CronSchedule.dayNames)
        if dow.remove(7) != nil { dow.insert(0) }
        daysOfWeek = dow
        dayOfMonthRestricted = !(fields[2] == "*" || fields[2] == "?")
        dayOfWeekRestricted = !(fields[4] == "*" || fields[4] == "?")
    }

    /// Whether the schedule fires at this minute (UTC fields).
    public func matches(minute: Int, hour: Int, day: Int, month: Int, weekday: Int) -> Bool {
        minutes.contains(minute) && hours.contains(hour) && dayMatches(day: day, month: month, weekday: weekday)
    }

    func dayMatches(day: Int, month: Int, weekday: Int) -> Bool {
        guard months.contains(month) else { return false }
        let dom = daysOfMonth.contains(day), dow = daysOfWeek.contains(weekday)
        // As cron: if both day fields are restricted, either one matching is enough.
        if dayOfMonthRestricted && dayOfWeekRestricted { return dom || dow }
        return dom && dow
    }

    /// The first firing time strictly after `time` (seconds since the epoch, UTC), searching up to five years.
    public func next(after time: Double) -> Double? {
        var t = (Int64(time.rounded(.down)) / 60 + 1) * 60
        let limit = t + 5 * 366 * 86_400
        while t < limit {
            let c = CronSchedule.civil(t)
            if !dayMatches(day: c.day, month: c.month, weekday: c.weekday) {
                t = (t / 86_400 + 1) * 86_400
                continue
            }
            if !hours.contains(c.hour) {
                t = (t / 3600 + 1) * 3600
                continue
            }
            if minutes.contains(c.minute) { return Double(t) }
            t += 60
        }
        return nil
    }

    /// Civil date and time of a Unix time in UTC (days-from-civil inverse, proleptic Gregorian).
    static func civil(_ t: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, weekday: Int) {
        let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let secs = t - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = Int((days % 7 + 11) % 7) // 1970-01-01 was a Thursday (4)
        return (Int(year), Int(month), Int(day), Int(secs / 3600), Int(secs % 3600 / 60), weekday)
    }

    private static func field(_ s: String, name: String, range: ClosedRange<Int>, names: [String], nameBase: Int = 0)
        throws(ParseError) -> Set<Int> {
        func value(_ t: Substring) throws(ParseError) -> Int {
            if let n = Int(t) {
                guard range.contains(n) else {
                    throw ParseError(message: "\(name) value \(n) is out of range \(range.lowerBound)-\(range.upperBound)")
                }
                return n
            }
            if let i = names.firstIndex(of: t.lowercased()) { return i + nameBase }
            throw ParseError(message: "\(name) field \"\(s)\" is not valid")
        }
        var out = Set<Int>()
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            var rangePart = part
            var step = 1
            if let slash = part.firstIndex(of: "/") {
                guard let n = Int(part[part.index(after: slash)...]), n > 0 else {
                    throw ParseError(message: "\(name) field \"\(s)\" has an invalid step")
                }
                step = n
                rangePart = part[..<slash]
            }
            var lo: Int, hi: Int
            if rangePart == "*" || rangePart == "?" {
                lo = range.lowerBound
                hi = range.upperBound
            } else if let dash = rangePart.firstIndex(of: "-") {
                lo = try value(rangePart[..<dash])
                hi = try value(rangePart[rangePart.index(after: dash)...])
                guard lo <= hi else { throw ParseError(message: "\(name) range \"\(rangePart)\" is backwards") }
            } else {
                lo = try value(rangePart)
                hi = part.contains("/") ? range.upperBound : lo
            }
            for v in stride(from: lo, through: hi, by: step) { out.insert(v) }
        }
        return out
    }
}
