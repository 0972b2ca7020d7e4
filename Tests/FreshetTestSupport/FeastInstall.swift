import Foundation

/// Feast (the Python SDK) for the tests that read Freshet's rows with it.
package enum FeastInstall {
    /// Installs Feast once (scripts/setup-feast.sh; about 1.5 minutes on a
    /// fresh machine, seconds after) and returns the venv's python.
    /// - Throws: `TestFailure` when the script fails or prints no python.
    package static func python() throws -> String {
        let output = try ChildProcess.run("bash", ["\(LocalCluster.packageRoot)/scripts/setup-feast.sh"], timeout: 1_200)
        guard let python = output.split(separator: "\n").last.map(String.init), FileManager.default.isExecutableFile(atPath: python) else {
            throw TestFailure("scripts/setup-feast.sh did not print the venv's python: \(output)")
        }
        return python
    }
}
