/// Event time in epoch milliseconds (UTC). Every timestamp in Freshet's dataflow
/// core uses this unit; wall-clock values used for idleness are also milliseconds
/// but are named `nowMs` to keep the two clocks apart.
public typealias EventTimeMs = Int64
