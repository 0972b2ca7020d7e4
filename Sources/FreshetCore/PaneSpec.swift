/// Pane-based sliding windows: fixed-size panes (hourly by default) and a window
/// made of the `windowPanes` most recent panes up to and including the pane that
/// holds the watermark (168 hourly panes = "the trailing 7 days").
public struct PaneSpec: Sendable, Equatable {
    public let paneMs: Int64
    public let windowPanes: Int

    package init(paneMs: Int64 = 3_600_000, windowPanes: Int = 168) {
        precondition(paneMs > 0 && windowPanes > 0, "pane size and window length must be positive")
        self.paneMs = paneMs
        self.windowPanes = windowPanes
    }

    /// The pane holding `ts`: floor(ts / paneMs), also for negative times.
    @inlinable @inline(__always)
    public func pane(of ts: EventTimeMs) -> Int64 {
        let q = ts / paneMs
        return (ts % paneMs < 0) ? q &- 1 : q
    }

    /// Start time of `pane`.
    @inlinable
    public func start(ofPane pane: Int64) -> EventTimeMs { pane &* paneMs }

    /// The panes visible at `watermark`: `(pane(W) − windowPanes + 1)...pane(W)`.
    package func windowPanes(at watermark: EventTimeMs) -> ClosedRange<Int64> {
        let top = pane(of: watermark)
        return (top &- Int64(windowPanes) &+ 1)...top
    }
}
