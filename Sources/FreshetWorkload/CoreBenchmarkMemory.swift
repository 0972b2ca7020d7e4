#if canImport(Glibc)
import Glibc
#endif
import FreshetCore
import FreshetFeatures

extension CoreBenchmark {
    /// Bytes of keyed state per user key and per item key, measured as the growth of
    /// resident memory (/proc/self/statm) while filling the stores. Use enough keys
    /// (>= 100k) that page granularity and allocator slack average out. (glibc's
    /// `mallinfo2` would be more precise but `malloc.h` is not in Swift's Glibc module.)
    ///
    /// Users get 60 positive interactions each, so every recent-items list is full (50).
    /// Items get activity in `panesPerItem` hourly panes (realistic fill: 48, two days of
    /// a typical item's life) and in all 168 panes (worst case). Item ids are interned
    /// before the user measurement, so the per-user figure excludes them.
    package static func memory(users: Int, items: Int, panesPerItem: Int = 48) -> MemoryReport {
        let base: EventTimeMs = 1_732_000_000_000
        let hour: Int64 = 3_600_000
        var rng = SplitMix64(seed: 42)
        let itemNames = (0..<items).map { "i\($0)" }

        let userStore = UserFeatureStore()
        for (k, item) in itemNames.enumerated() {
            userStore.apply(Interaction(userId: "warmup", itemId: item, action: .click, ts: base + Int64(k)))
        }
        let u0 = allocatedBytes()
        for u in 0..<users {
            let user = "u\(u)"
            for k in 0..<60 {
                userStore.apply(Interaction(userId: user, itemId: itemNames[rng.nextInt(items)], action: .click,
                                            ts: base + Int64(k) * 1_000))
            }
        }
        let u1 = allocatedBytes()

        func fillItems(panes: Int) -> Double {
            let store = ItemFeatureStore()
            store.advanceWatermark(to: base + Int64(panes) * hour)
            let before = allocatedBytes()
            for item in itemNames {
                for p in 0..<panes {
                    let ts = base + Int64(p) * hour + 1
                    store.apply(ItemEvent(itemId: item, userId: "u", ts: ts, kind: .interaction(.click, dwellMs: nil)),
                                watermark: nil)
                    store.apply(ItemEvent(itemId: item, userId: "u", ts: ts, kind: .impression(position: 0)),
                                watermark: nil)
                }
            }
            _ = store.takeDirty()
            _ = store.takeChangedForCheckpoint()
            let after = allocatedBytes()
            withExtendedLifetime(store) {}
            return Double(after - before) / Double(items)
        }
        let typical = fillItems(panes: min(panesPerItem, 168))
        let worst = fillItems(panes: 168)
        withExtendedLifetime(userStore) {}
        return MemoryReport(users: users, items: items, bytesPerUser: Double(u1 - u0) / Double(users),
                            panesPerItem: panesPerItem, bytesPerItem: typical, bytesPerItemAllPanes: worst,
                            method: measurementMethod)
    }

    static var measurementMethod: String {
        #if canImport(Glibc)
        return "resident set growth, /proc/self/statm"
        #else
        return "unavailable on this platform"
        #endif
    }

    /// Resident bytes of this process (0 when /proc is unavailable).
    static func allocatedBytes() -> Int {
        #if canImport(Glibc)
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        // Fields: size resident shared text lib data dt (pages).
        let fields = buf[0..<n].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return 0
        #endif
    }
}

/// Results of `CoreBenchmark.memory`.
package struct MemoryReport: Sendable, CustomStringConvertible {
    package var users: Int
    package var items: Int
    package var bytesPerUser: Double
    package var panesPerItem: Int
    package var bytesPerItem: Double
    package var bytesPerItemAllPanes: Double
    package var method: String

    package var description: String {
        """
        memory (\(method)):
          per user key (recent items full, 50):        \(Int(bytesPerUser.rounded())) bytes (\(users) users)
          per item key (\(panesPerItem) panes with counts):            \(Int(bytesPerItem.rounded())) bytes (\(items) items)
          per item key (all 168 panes, worst case):  \(Int(bytesPerItemAllPanes.rounded())) bytes
        """
    }
}
