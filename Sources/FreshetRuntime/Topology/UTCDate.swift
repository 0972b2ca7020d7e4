/// Parses the UTC dates the topology file accepts, without Foundation's
/// locale-dependent formatters.
enum UTCDate {
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` as epoch milliseconds; nil when
    /// the text is not one of these shapes or names an impossible date.
    static func epochMilliseconds(_ text: String) -> Int64? {
        let parts = text.split(separator: "T", maxSplits: 1, omittingEmptySubsequences: false)
        let date = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard date.count == 3, date[0].count == 4, date[1].count == 2, date[2].count == 2,
              let year = Int64(date[0]), let month = Int64(date[1]), let day = Int64(date[2]),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else { return nil }
        var seconds: Int64 = 0
        if parts.count == 2 {
            guard parts[1].hasSuffix("Z") else { return nil }
            let clock = parts[1].dropLast().split(separator: ":", omittingEmptySubsequences: false)
            guard clock.count == 3, clock.allSatisfy({ $0.count == 2 }),
                  let h = Int64(clock[0]), let m = Int64(clock[1]), let s = Int64(clock[2]),
                  h < 24, m < 60, s < 60 else { return nil }
            seconds = h * 3600 + m * 60 + s
        }
        return (daysFromCivil(year: year, month: month, day: day) * 86_400 + seconds) * 1000
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
