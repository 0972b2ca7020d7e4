import Foundation
import FreshetCore

/// The features, computed straightforwardly from the events that were
/// produced: no panes, no timers, no incremental state. Integration tests
/// compare Redis with this.
package struct FeatureOracle {
    package struct Event {
        package enum Body { case interaction(Interaction), impression(Impression), bad }
        package var topic: String
        package var partition: Int32
        package var body: Body

        package init(topic: String, partition: Int32, body: Body) {
            self.topic = topic
            self.partition = partition
            self.body = body
        }
    }

    package struct User: Equatable { package var recent: [String]; package var count: Int64; package var updated: Int64 }
    package struct Item: Equatable { package var popularity: Int64; package var impressions: Int64; package var updated: Int64 }

    package let outOfOrdernessMs: Int64 = 5_000
    package let paneMs: Int64 = 3_600_000
    package let windowPanes: Int64 = 168
    package let halfLifeMs: Double = 3_600_000

    package var users: [String: User] = [:]
    package var items: [String: Item] = [:]
    package var trending: [String: Double] = [:]
    package var deadLetters = 0
    package var watermark: Int64 = .min

    package init(events: [Event]) {
        // Final watermark: min over non-empty source partitions of (max event time - bound).
        var maxPerPartition: [String: Int64] = [:]
        for event in events {
            let ts: Int64
            switch event.body {
            case .interaction(let i): ts = i.ts
            case .impression(let i): ts = i.ts
            case .bad: deadLetters += 1; continue
            }
            let key = "\(event.topic)/\(event.partition)"
            maxPerPartition[key] = max(maxPerPartition[key] ?? .min, ts)
        }
        watermark = (maxPerPartition.values.min() ?? .min) - outOfOrdernessMs
        let top = floorDiv(watermark, paneMs)
        let window = (top - windowPanes + 1)...top

        var latest: [String: [String: Int64]] = [:]
        var positivePerItem: [String: [Int64]] = [:]
        for event in events {
            switch event.body {
            case .interaction(let i):
                guard i.action != .skip else { continue }
                var user = users[i.userId] ?? User(recent: [], count: 0, updated: .min)
                user.count += 1
                user.updated = max(user.updated, i.ts)
                users[i.userId] = user
                latest[i.userId, default: [:]][i.itemId] = max(latest[i.userId]?[i.itemId] ?? .min, i.ts)
                var item = items[i.itemId] ?? Item(popularity: 0, impressions: 0, updated: .min)
                if window.contains(floorDiv(i.ts, paneMs)) { item.popularity += 1 }
                item.updated = max(item.updated, i.ts)
                items[i.itemId] = item
                positivePerItem[i.itemId, default: []].append(i.ts)
            case .impression(let impression):
                for shown in impression.itemsShown {
                    var item = items[shown] ?? Item(popularity: 0, impressions: 0, updated: .min)
                    if window.contains(floorDiv(impression.ts, paneMs)) { item.impressions += 1 }
                    item.updated = max(item.updated, impression.ts)
                    items[shown] = item
                }
            case .bad:
                continue
            }
        }
        for (userId, perItem) in latest {
            let ordered = perItem.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }
            users[userId]?.recent = ordered.prefix(50).map(\.key)
        }
        for (item, times) in positivePerItem {
            trending[item] = times.reduce(0.0) { $0 + pow(2.0, -Double(watermark - $1) / halfLifeMs) }
        }
    }

    /// The top K by decayed count, highest first.
    package func topTrending(_ k: Int) -> [(String, Double)] {
        Array(trending.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(k))
    }

    private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}
