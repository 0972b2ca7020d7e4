@testable import FreshetRuntime
import XCTest

/// A bounded run whose sources here are all at their end, with the final
/// refresh to follow: a due sync of changed vectors waits, since the final
/// refresh's republication rewrites every vector, but never while a switch
/// to a new refresh is due (users and items stay in one basis) and never
/// more than one more interval.
final class EmbeddingSyncAtTheEndTests: XCTestCase {
    let interval: Int64 = 10_000

    func testADueSyncWaitsOnceEverySourceHereIsAtItsEnd() {
        XCTAssertTrue(StreamProcessor.syncWaitsForFinalRefresh(sourcesAtEnd: true, sinceLastSyncMs: interval,
                                                               syncIntervalMs: interval, switchDue: false))
        XCTAssertTrue(StreamProcessor.syncWaitsForFinalRefresh(sourcesAtEnd: true, sinceLastSyncMs: 2 * interval - 1,
                                                               syncIntervalMs: interval, switchDue: false))
    }

    func testASyncDoesNotWaitWhileASourceStillHasInput() {
        XCTAssertFalse(StreamProcessor.syncWaitsForFinalRefresh(sourcesAtEnd: false, sinceLastSyncMs: interval,
                                                                syncIntervalMs: interval, switchDue: false))
    }

    func testASwitchToANewRefreshIsNeverHeldBack() {
        XCTAssertFalse(StreamProcessor.syncWaitsForFinalRefresh(sourcesAtEnd: true, sinceLastSyncMs: interval,
                                                                syncIntervalMs: interval, switchDue: true))
    }

    func testASyncWaitsAtMostOneMoreInterval() {
        XCTAssertFalse(StreamProcessor.syncWaitsForFinalRefresh(sourcesAtEnd: true, sinceLastSyncMs: 2 * interval,
                                                                syncIntervalMs: interval, switchDue: false))
    }
}
