import XCTest
import FreshetCore
@testable import FreshetFeatures

/// `UserStatePrefetcher` is a hint: a store shown records ahead (keys that
/// name the record's user, another user, a user not seen yet, no key) ends
/// with exactly the features of a store that was shown nothing.
final class UserStatePrefetcherTests: XCTestCase {
    func testShowingRecordsAheadChangesNoFeature() {
        var rng = SplitMix64(seed: 7)
        struct Record { var user: String; var item: String; var ts: EventTimeMs; var key: String? }
        var records: [Record] = []
        for n in 0..<20_000 {
            let user = "u\(rng.next() % 3_000)"
            let key: String?
            switch rng.next() % 10 {
            case 0: key = nil                              // no key
            case 1: key = "u\(rng.next() % 6_000)"         // another user, maybe one not seen yet
            case 2: key = ""                               // an empty key
            default: key = user                            // keyed by user, as producers should
            }
            records.append(Record(user: user, item: "i\(rng.next() % 500)", ts: 1_000 + EventTimeMs(n) - EventTimeMs(rng.next() % 50), key: key))
        }
        let plain = UserFeatureStore(recentCapacity: 8)
        let shown = UserFeatureStore(recentCapacity: 8)
        var prefetcher = UserStatePrefetcher()
        let ahead = UserStatePrefetcher.lookahead
        func apply(_ store: UserFeatureStore, _ r: Record) {
            Array(r.user.utf8).withUnsafeBytes { user in
                Array(r.item.utf8).withUnsafeBytes { item in
                    store.apply(userId: user, itemId: item, ts: r.ts, positive: true)
                }
            }
        }
        for (k, r) in records.enumerated() {
            apply(plain, r)
            if k + ahead < records.count {
                if let key = records[k + ahead].key {
                    Array(key.utf8).withUnsafeBytes { prefetcher.show(key: $0, store: shown) }
                } else {
                    prefetcher.show(key: nil, store: shown)
                }
            }
            apply(shown, r)
        }
        XCTAssertEqual(shown.count, plain.count)
        for u in 0..<3_000 {
            XCTAssertEqual(shown.features(of: "u\(u)"), plain.features(of: "u\(u)"), "user u\(u)")
        }
        XCTAssertEqual(shown.takeDirty().sorted(), plain.takeDirty().sorted())
    }
}
