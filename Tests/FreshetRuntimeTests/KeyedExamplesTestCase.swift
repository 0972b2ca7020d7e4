import FreshetCore
@testable import FreshetRuntime
import XCTest

/// Examples' scenarios on a `TaskDriver` (default topology: examples through
/// the counts stage), input keyed by user as producers would key it: `uN` on
/// source partition N % 2 of each topic. Subclasses may move `base`.
class KeyedExamplesTestCase: XCTestCase {
    var base: Int64 { 1_767_225_600_000 }  // 2026-01-01T00:00Z
    let second: Int64 = 1_000
    let hour: Int64 = 3_600_000

    func driver(_ topology: Topology = Topology()) -> TaskDriver {
        TaskDriver(topology: topology, interactionPartitions: 2, impressionPartitions: 2, repartitionPartitions: 3,
                   nowMs: base + 48 * hour, itemEmbeddings: true)
    }

    func partition(_ user: String) -> Int32 { Int32((Int(user.dropFirst()) ?? 0) % 2) }

    func interaction(_ d: TaskDriver, _ user: String, _ item: String, _ action: String = "click", at ts: Int64) {
        d.send(.interactions, partition: partition(user),
               Array(#"{"user_id":"\#(user)","item_id":"\#(item)","action":"\#(action)","ts":\#(ts)}"#.utf8))
    }

    func impression(_ d: TaskDriver, _ user: String, _ items: [String], at ts: Int64, request: String) {
        let shown = items.map { "\"\($0)\"" }.joined(separator: ",")
        d.send(.impressions, partition: partition(user),
               Array(#"{"request_id":"\#(request)","user_id":"\#(user)","items_shown":[\#(shown)],"ts":\#(ts)}"#.utf8))
    }

    /// An event on every source partition at `ts`: every watermark moves to
    /// ts − 5 s, and the counts stage releases what lies before it.
    func clock(_ d: TaskDriver, at ts: Int64) {
        for p: Int32 in 0..<2 {
            d.send(.interactions, partition: p,
                   Array(#"{"user_id":"clock\#(p)","item_id":"clock-item","action":"skip","ts":\#(ts)}"#.utf8))
            d.send(.impressions, partition: p,
                   Array(#"{"user_id":"clock\#(p)","items_shown":["clock-item"],"ts":\#(ts)}"#.utf8))
        }
        d.runUntilQuiet()
    }
}
