import Foundation

@inline(__always) func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Foundation.cos(x) }
@inline(__always) func _logf(_ x: Float) -> Float { Foundation.logf(x) }

/// Logistic function, clamped so that exp never overflows.
@inline(__always)
func sigmoid(_ x: Float) -> Float {
    let c = min(max(x, -30), 30)
    return 1 / (1 + Foundation.expf(-c))
}

/// -log(sigmoid(x)), numerically stable.
@inline(__always)
func softplusNeg(_ x: Float) -> Float {
    // -log σ(x) = log(1 + e^{-x})
    if x > 30 { return Foundation.expf(-x) }
    if x < -30 { return -x }
    return Foundation.log1pf(Foundation.expf(-x))
}

/// Inner product of two rows. Four independent accumulators so the release build
/// keeps the FP pipes busy (Swift does not reassociate float sums by itself).
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
    var k = 0
    let n4 = n & ~3
    while k < n4 {
        s0 += a[k] * b[k]
        s1 += a[k + 1] * b[k + 1]
        s2 += a[k + 2] * b[k + 2]
        s3 += a[k + 3] * b[k + 3]
        k += 4
    }
    while k < n { s0 += a[k] * b[k]; k += 1 }
    return (s0 + s1) + (s2 + s3)
}

/// y += alpha * x
@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for k in 0..<n { y[k] += alpha * x[k] }
}
