import FreshetCore

/// A seeded, deterministic stream of recommender events: interactions and
/// impressions in event-time order over `config.spanMs`, with optional jitter,
/// late events and bad input.
///
/// Mix: interactions:impressions = `interactionsPerImpression`:1; actions are
/// click 55%, watch 20%, like 10%, share 5%, skip 10%; items are Zipf-popular;
/// ids look like "u123"/"i456" (or bare integers for `integerIdFraction`).
package struct SyntheticStream: Sequence, IteratorProtocol, Sendable {
    package let config: SyntheticConfig
    package let count: Int
    private var index = 0
    private(set) var badCounter = 0
    private var rng: SplitMix64
    private let itemZipf: SyntheticZipf
    private let userZipf: SyntheticZipf?

    package init(config: SyntheticConfig, count: Int) {
        self.config = config
        self.count = count
        rng = SplitMix64(seed: config.seed)
        itemZipf = SyntheticZipf(count: config.items, exponent: config.zipfExponent)
        userZipf = config.userZipfExponent > 0 ? SyntheticZipf(count: config.users, exponent: config.userZipfExponent) : nil
    }

    package mutating func next() -> SyntheticEvent? {
        guard index < count else { return nil }
        defer { index += 1 }
        var ts = config.startMs + Int64(Double(config.spanMs) * Double(index) / Double(Swift.max(count, 1)))
        if config.outOfOrderMs > 0 { ts -= rng.inRange(0...config.outOfOrderMs) }
        if config.lateFraction > 0 && rng.nextUnit() < config.lateFraction { ts -= rng.inRange(config.lateByMs) }
        let integerIds = config.integerIdFraction > 0 && rng.nextUnit() < config.integerIdFraction
        let user = userId(integer: integerIds)
        if config.badFraction > 0 && rng.nextUnit() < config.badFraction {
            let reason = Self.badReasons[badCounter % Self.badReasons.count]
            badCounter += 1
            return badEvent(reason, user: user, ts: ts)
        }
        if rng.nextUnit() * (config.interactionsPerImpression + 1) < 1 {
            return impression(user: user, ts: ts, integerIds: integerIds)
        }
        return interaction(user: user, ts: ts, integerIds: integerIds)
    }

    // MARK: draws

    mutating func userId(integer: Bool) -> String {
        let k = userZipf.map { $0.rank(rng.nextUnit()) } ?? rng.nextInt(config.users)
        return integer ? String(k) : "u\(k)"
    }

    mutating func itemRank() -> Int { itemZipf.rank(rng.nextUnit()) }

    mutating func action() -> Action {
        let u = rng.nextInt(100)
        switch u {
        case 0..<55: return .click
        case 55..<75: return .watch
        case 75..<85: return .like
        case 85..<90: return .share
        default: return .skip
        }
    }

    // MARK: valid events

    mutating func interaction(user: String, ts: EventTimeMs, integerIds: Bool) -> SyntheticEvent {
        let rank = itemRank()
        let item = integerIds ? String(rank) : "i\(rank)"
        let act = action()
        let dwell: Int64? = act == .watch ? rng.inRange(1_000...600_000) : (rng.nextInt(2) == 0 ? rng.inRange(0...30_000) : nil)
        let request: String? = rng.nextInt(4) == 0 ? nil : "r\(index)"
        let event = Interaction(userId: user, itemId: item, action: act, dwellMs: dwell, ts: ts, requestId: request)
        let json = EventJSON.interaction(event, integerIds: integerIds)
        return SyntheticEvent(topic: .interactions, key: user, json: json, timestampMs: ts, expected: .interaction(event))
    }

    mutating func impression(user: String, ts: EventTimeMs, integerIds: Bool) -> SyntheticEvent {
        let n = Swift.max(1, config.itemsPerImpression)
        var ranks: [Int] = []
        ranks.reserveCapacity(n)
        var attempts = 0
        // Distinct items in one list, unless the catalogue is too small to allow it.
        while ranks.count < n {
            let r = itemRank()
            attempts += 1
            if !ranks.contains(r) || attempts > 4 * n { ranks.append(r) }
        }
        let items = ranks.map { integerIds ? String($0) : "i\($0)" }
        let withPositions = rng.nextInt(8) != 0
        let event = Impression(requestId: "r\(index)", userId: user, itemsShown: items,
                               positions: withPositions ? (0..<Int32(n)).map { $0 } : nil, ts: ts)
        return SyntheticEvent(topic: .impressions, key: user, json: EventJSON.impression(event, integerIds: integerIds), timestampMs: ts,
                              expected: .impression(event))
    }
}
