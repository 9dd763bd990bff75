import BerthModel
import Testing

@Suite struct QuantityTests {
    @Test(arguments: [
        ("100m", Int64(100)), ("0.5", 500), ("1", 1000), ("2.5", 2500), ("128Mi", 134_217_728_000),
        ("1Ki", 1_024_000), ("1G", 1_000_000_000_000), ("1e3", 1_000_000), ("1E3", 1_000_000), ("1k", 1_000_000),
        ("0.1m", 1), ("1n", 1), ("1u", 1), ("0", 0), ("+2", 2000), ("1.5Gi", 1_610_612_736_000),
        ("0.000001", 1), ("12e-3", 12), ("0001", 1000), ("1P", 1_000_000_000_000_000_000),
    ])
    func parses(text: String, milli: Int64) throws {
        #expect(try Quantity(parsing: text).milli == milli)
    }

    @Test(arguments: ["", "m", "1mi", "1.2.3", "abc", "1 Gi", "1Gb", "--1", "1e", "0x10"])
    func rejectsMalformed(text: String) {
        #expect(throws: Quantity.ParseError.self) { try Quantity(parsing: text) }
    }

    @Test func rejectsOverflow() {
        #expect(throws: Quantity.ParseError.tooLarge("100Ei")) { try Quantity(parsing: "100Ei") }
    }

    @Test func comparesByValue() throws {
        #expect(try Quantity(parsing: "1") == Quantity(parsing: "1000m"))
        #expect(try Quantity(parsing: "128Mi") > Quantity(parsing: "100M"))
        #expect(try Quantity(parsing: "1500m").value == 2)
    }
}

@Suite struct SelectorTests {
    @Test func matchLabelsAndExpressions() {
        let s = LabelSelector(matchLabels: ["app": "web"], matchExpressions: [
            .init(key: "tier", op: .in, values: ["front", "edge"]),
            .init(key: "canary", op: .doesNotExist),
            .init(key: "zone", op: .notIn, values: ["b"]),
        ])
        #expect(s.matches(["app": "web", "tier": "front"]))
        #expect(s.matches(["app": "web", "tier": "edge", "zone": "a"]))
        #expect(!s.matches(["app": "web", "tier": "back"]))
        #expect(!s.matches(["app": "web", "tier": "front", "canary": "1"]))
        #expect(!s.matches(["app": "web", "tier": "front", "zone": "b"]))
        #expect(!s.matches(["app": "api", "tier": "front"]))
        #expect(!LabelSelector().matches(["app": "web"]))
    }

    @Test func percentages() {
        #expect(IntOrString.string("25%").scaled(total: 3, roundUp: true) == 1)
        #expect(IntOrString.string("25%").scaled(total: 3, roundUp: false) == 0)
        #expect(IntOrString.int(2).scaled(total: 10, roundUp: false) == 2)
        #expect(IntOrString.string("x").scaled(total: 10, roundUp: false) == nil)
    }
}

@Suite struct CronScheduleTests {
    @Test func parsesFieldsAndMacros() throws {
        let s = try CronSchedule(parsing: "*/15 9-17 * jan,JUL mon-fri")
        #expect(s.minutes == [0, 15, 30, 45])
        #expect(s.hours == Set(9...17))
        #expect(s.months == [1, 7])
        #expect(s.daysOfWeek == Set(1...5))
        #expect(!s.dayOfMonthRestricted && s.dayOfWeekRestricted)
        let h = try CronSchedule(parsing: "@hourly")
        #expect(h.minutes == [0] && h.hours.count == 24)
        #expect(try CronSchedule(parsing: "0 0 * * 7").daysOfWeek == [0])
    }

    @Test(arguments: [
        ("* * * *", "schedule \"* * * *\" must have 5 fields (minute hour day-of-month month day-of-week), not 4"),
        ("60 * * * *", "minute value 60 is out of range 0-59"),
        ("0 0 * foo *", "month field \"foo\" is not valid"),
        ("*/0 * * * *", "minute field \"*/0\" has an invalid step"),
        ("5-1 * * * *", "minute range \"5-1\" is backwards"),
        ("@fortnightly", "unknown schedule macro \"@fortnightly\"; use @yearly, @monthly, @weekly, @daily or @hourly"),
        ("TZ=UTC 0 * * * *", "time zones in the schedule are not supported; use UTC times"),
    ])
    func rejects(text: String, message: String) {
        #expect(throws: CronSchedule.ParseError(message: message)) { try CronSchedule(parsing: text) }
    }
}

@Suite struct NamesTests {
    @Test func dnsNames() {
        #expect(Names.dns1123Label("web-1") == nil)
        #expect(Names.dns1123Label("Web") != nil)
        #expect(Names.dns1123Label("-web") != nil)
        #expect(Names.dns1123Label(String(repeating: "a", count: 64)) != nil)
        #expect(Names.dns1123Subdomain("a.b-c.d") == nil)
        #expect(Names.dns1123Subdomain("a..b") != nil)
        #expect(Names.qualifiedName("app.kubernetes.io/name") == nil)
        #expect(Names.qualifiedName("/name") != nil)
        #expect(Names.labelValue("") == nil)
        #expect(Names.labelValue("v1.0_beta-2") == nil)
        #expect(Names.labelValue("-x") != nil)
        #expect(Names.portName("http") == nil)
        #expect(Names.portName("8080") != nil)
        #expect(Names.portName("a--b") != nil)
        #expect(Names.portName("sixteen-chars-xx") != nil)
        #expect(Names.resourceName("nvidia.com/gpu") == nil)
        #expect(Names.resourceName("gpu") != nil)
    }

    @Test func suggestions() {
        #expect(Names.suggestion(for: "imagee", among: ["image", "name", "args"]) == "image")
        #expect(Names.suggestion(for: "contianers", among: ["containers", "volumes"]) == "containers")
        #expect(Names.suggestion(for: "Replicas", among: ["replicas", "selector"]) == "replicas")
        #expect(Names.suggestion(for: "zzzzzz", among: ["replicas", "selector"]) == nil)
    }
}

@Suite struct CronNextTests {
    // 2026-11-21 is a Saturday; 1_795_219_200 is 2026-11-21T00:00:00Z.
    let midnight = 1_795_219_200.0

    @Test func nextFiringTimes() throws {
        #expect(try CronSchedule(parsing: "*/15 * * * *").next(after: midnight + 60) == midnight + 900)
        #expect(try CronSchedule(parsing: "0 3 * * *").next(after: midnight) == midnight + 3 * 3600)
        #expect(try CronSchedule(parsing: "0 3 * * *").next(after: midnight + 3 * 3600) == midnight + 86_400 + 3 * 3600)
        // Mondays at 09:30: two days later.
        #expect(try CronSchedule(parsing: "30 9 * * mon").next(after: midnight) == midnight + 2 * 86_400 + 9 * 3600 + 1800)
        // First of the month: 2026-12-01.
        #expect(try CronSchedule(parsing: "@monthly").next(after: midnight) == midnight + 10 * 86_400)
        // Day of month or day of week, when both are restricted: the 25th or any Sunday → Sunday the 22nd.
        #expect(try CronSchedule(parsing: "0 0 25 * sun").next(after: midnight) == midnight + 86_400)
        #expect(try CronSchedule(parsing: "0 0 30 2 *").next(after: midnight) == nil)
    }
}
