#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import FreshetCore

/// Forward-decayed trending score (Cormode et al., "Forward decay"), kept in the
/// log2 domain.
///
/// DESIGN.md defines trending at watermark W as Σ 2^(−(W − ts)/H) over an item's
/// positive interactions. That equals 2^(−(W − anchor)/H) · Σ 2^((ts − anchor)/H):
/// the second factor does not depend on W, so each item keeps only
/// `score = log2 Σ 2^((ts − anchor)/H)`. Scores from different tasks and watermarks
/// compare directly, their order is the order of the decayed counts at any W, and
/// no rescaling is ever needed. The log domain avoids overflow (2^(years/H)).
package struct TrendingDecay: Sendable, Equatable {
    package let halfLifeMs: Int64
    package let anchorMs: EventTimeMs

    package init(halfLifeMs: Int64 = 3_600_000, anchorMs: EventTimeMs = 1_577_836_800_000) {
        precondition(halfLifeMs > 0, "half-life must be positive")
        self.halfLifeMs = halfLifeMs
        self.anchorMs = anchorMs
    }

    /// log2 of one event's weight: (ts − anchor) / H.
    @inline(__always)
    package func log2Contribution(ts: EventTimeMs) -> Double {
        Double(ts &- anchorMs) / Double(halfLifeMs)
    }

    /// log2(2^a + 2^b), numerically stable; `a == nil` means an empty sum.
    @inline(__always)
    package func combine(_ a: Double?, _ b: Double) -> Double {
        guard let a, a > -Double.infinity else { return b }
        let hi = Swift.max(a, b)
        let lo = Swift.min(a, b)
        // log2(2^hi (1 + 2^(lo−hi))) with log1p for accuracy when lo ≪ hi.
        return hi + log1p(exp2(lo - hi)) / M_LN2
    }

    /// The decayed count Σ 2^(−(W − ts)/H) represented by `log2Score`.
    package func decayedCount(log2Score: Double, at watermark: EventTimeMs) -> Double {
        exp2(log2Score - log2Contribution(ts: watermark))
    }
}
