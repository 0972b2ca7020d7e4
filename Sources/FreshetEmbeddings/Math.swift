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

// Element-wise kernels. Release builds use explicit SIMD8 (the auto-vectoriser
// leaves the Adagrad loop scalar); debug builds use the scalar loop because generic
// SIMD is very slow unoptimised. Element-wise IEEE operations give bit-identical
// results either way, so tests in debug check exactly what release runs.

/// y += alpha * x
@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var k = 0
    #if !DEBUG
    let a = SIMD8<Float>(repeating: alpha)
    let xr = UnsafeRawPointer(x), yr = UnsafeMutableRawPointer(y)
    while k + 8 <= n {
        let off = k * 4
        let v = yr.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self) + a * xr.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
        yr.storeBytes(of: v, toByteOffset: off, as: SIMD8<Float>.self)
        k += 8
    }
    #endif
    while k < n { y[k] += alpha * x[k]; k += 1 }
}

/// w += alpha * g (plain SGD step, alpha = -lr·scale).
@inline(__always)
func sgdUpdate(w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, alpha: Float, n: Int) {
    axpy(alpha, g, w, n)
}

/// Adagrad: acc += (scale·g)²; w -= lr · scale·g / sqrt(acc).
@inline(__always)
func adagradUpdate(w: UnsafeMutablePointer<Float>, acc: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>,
                   scale: Float, lr: Float, n: Int) {
    var k = 0
    #if !DEBUG
    let sc = SIMD8<Float>(repeating: scale), lrv = SIMD8<Float>(repeating: lr)
    let wr = UnsafeMutableRawPointer(w), ar = UnsafeMutableRawPointer(acc), gr = UnsafeRawPointer(g)
    while k + 8 <= n {
        let off = k * 4
        let gk = sc * gr.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
        let s = ar.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self) + gk * gk
        ar.storeBytes(of: s, toByteOffset: off, as: SIMD8<Float>.self)
        let nw = wr.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self) - lrv * gk / s.squareRoot()
        wr.storeBytes(of: nw, toByteOffset: off, as: SIMD8<Float>.self)
        k += 8
    }
    #endif
    while k < n {
        let gk = scale * g[k]
        let s = acc[k] + gk * gk
        acc[k] = s
        w[k] -= lr * gk / s.squareRoot()
        k += 1
    }
}
