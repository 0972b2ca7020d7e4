import Foundation

/// Just enough of the Prometheus text format to check the processor's /metrics.
package struct PrometheusText {
    package struct Sample {
        package var name: String
        /// The raw label block without braces, e.g. `topic="a",partition="0"` (empty when none).
        package var labels: String
        package var value: Double
    }

    package let samples: [Sample]

    package init(_ text: String) {
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            if let brace = series.firstIndex(of: "{"), series.hasSuffix("}") {
                samples.append(Sample(name: String(series[..<brace]),
                                      labels: String(series[series.index(after: brace)..<series.index(before: series.endIndex)]),
                                      value: value))
            } else {
                samples.append(Sample(name: String(series), labels: "", value: value))
            }
        }
        self.samples = samples
    }

    package func series(_ name: String) -> [Sample] { samples.filter { $0.name == name } }
    package func sum(_ name: String, labelsContaining fragment: String = "") -> Double {
        series(name).filter { fragment.isEmpty || $0.labels.contains(fragment) }.reduce(0) { $0 + $1.value }
    }
}
