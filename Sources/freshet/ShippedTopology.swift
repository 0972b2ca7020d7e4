import Foundation
import FreshetRuntime

/// The topology file the commands read by default, and the one rule for
/// when it is absent (a command run outside the checkout): the built-in
/// defaults, which that file documents (`TopologyLoaderTests` holds the two
/// equal). A file named on the command line must load.
enum ShippedTopology {
    static let path = "topologies/recsys.yaml"

    /// `path` loaded, or with nil the shipped file when it exists, else the
    /// built-in defaults (`builtIn` true).
    /// - Throws: the loader's error for a file that exists but is invalid, or a named file that is missing.
    static func load(_ path: String?) throws(TopologyError) -> (topology: Topology, builtIn: Bool) {
        if let path { return (try TopologyLoader.load(path: path), false) }
        guard FileManager.default.fileExists(atPath: Self.path) else { return (Topology(), true) }
        return (try TopologyLoader.load(path: Self.path), false)
    }

    /// A command's `--topology` value as `load` takes it: the default
    /// spelled out means "the default" (nil).
    static func named(_ option: String) -> String? { option == path ? nil : option }
}
