import ArgumentParser
import Foundation
import FreshetRedis
import FreshetRuntime

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Print what a reader gets from Redis, as JSON.",
        discussion: "freshet features user ID | item ID | trending"
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Topology file (for the key prefix); default: topologies/recsys.yaml when it exists, else the built-in defaults.")
    var topology: String?

    @Argument(help: "user, item or trending")
    var kind: String

    @Argument(help: "The user or item id.")
    var id: String?

    func run() throws {
        let topologyValue: Topology
        do {
            topologyValue = try ShippedTopology.load(topology).topology
        } catch {
            throw ValidationError(error.description)
        }
        let keys = RedisKeys(prefix: topologyValue.redis.keyPrefix, group: "")
        // One Redis or a cluster (redis+cluster://...); give up after 10 s of an unreachable store.
        let deadline = Date().addingTimeInterval(10)
        let redis = try RedisTarget(url: connection.resolvedRedis).makeStore(shouldStop: { Date() > deadline })
        defer { redis.close() }
        let reader = FeatureReader(store: redis, keys: keys)
        let json: String
        do {
            switch (kind, id) {
            case ("user", let id?):
                json = try reader.userJSON(id)
            case ("item", let id?):
                json = try reader.itemJSON(id)
            case ("trending", nil):
                json = try reader.trendingJSON()
            default:
                throw ValidationError("usage: freshet features user ID | item ID | trending")
            }
        } catch let error as RedisError where connection.givenRedis == nil && error.kind == .connection {
            // A new user's first try: say which Redis that was, and how to name another.
            throw ValidationError("\(error)\nNo --redis given, so this read the embedded default's Redis (\(connection.resolvedRedis), which `freshet run` without --redis starts and stops with itself); pass --redis URL or set FRESHET_REDIS_URL to read another")
        }
        print(json)
    }
}
