// swift-tools-version:6.1
import PackageDescription

// Dependencies are kept few on purpose: CI builds from a clean clone on two
// cores, and every package costs build minutes.
let package = Package(
    name: "Freshet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "freshet", targets: ["freshet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // The C boundary: only FreshetKafka imports CRdKafka, only FreshetRedis imports CHiredis.
        .systemLibrary(name: "CRdKafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // Dense BLAS/LAPACK for the spectral refresh of the co-occurrence embeddings.
        .systemLibrary(name: "CLinearAlgebra", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        // A header only: the compiler's cache prefetch hint, for loops over keys known in advance.
        .systemLibrary(name: "CPrefetch"),

        // Dataflow core: event time, watermarks, panes, keyed state, event decoding. No I/O.
        .target(name: "FreshetCore", dependencies: ["CPrefetch"]),
        // The recommender's features as operators on the core. No I/O.
        .target(name: "FreshetFeatures", dependencies: [
            "FreshetCore", "CPrefetch", .product(name: "HeapModule", package: "swift-collections"),
        ]),
        // Online embeddings (Monolith-style): joiner, tables, trainer, evaluation. No I/O.
        .target(name: "FreshetEmbeddings", dependencies: [
            "FreshetCore", "CLinearAlgebra", "CPrefetch", .product(name: "HeapModule", package: "swift-collections"),
        ]),
        // Feast's Redis online-store layout: entity keys, murmur3 field names, protobuf values. No I/O.
        .target(name: "FreshetFeast"),
        // Seeded synthetic workloads (shared by `freshet produce`, tests and benchmarks).
        .target(name: "FreshetWorkload", dependencies: ["FreshetCore", "FreshetFeatures", "FreshetEmbeddings"]),
        // Child processes, loopback ports and the local broker and Redis (the embedded default, benchmarks, tests).
        .target(name: "FreshetProcess"),
        // The only modules that touch the C libraries.
        .target(name: "FreshetKafka", dependencies: ["CRdKafka", .product(name: "DequeModule", package: "swift-collections")]),
        .target(name: "FreshetRedis", dependencies: ["CHiredis"]),
        // Wires a topology into tasks: Kafka in, state, Redis out, checkpoints, metrics.
        .target(name: "FreshetRuntime", dependencies: [
            "FreshetCore", "FreshetFeatures", "FreshetEmbeddings", "FreshetFeast", "FreshetKafka", "FreshetRedis", "FreshetProcess",
            .product(name: "HeapModule", package: "swift-collections"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        .executableTarget(name: "freshet", dependencies: [
            "FreshetRuntime", "FreshetWorkload", "FreshetCore", "FreshetFeatures", "FreshetEmbeddings",
            "FreshetKafka", "FreshetRedis", "FreshetProcess",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        .testTarget(name: "FreshetCoreTests", dependencies: ["FreshetCore"]),
        .testTarget(name: "FreshetFeaturesTests", dependencies: ["FreshetFeatures", "FreshetCore"]),
        .testTarget(name: "FreshetFeastTests", dependencies: ["FreshetFeast"]),
        .testTarget(name: "FreshetEmbeddingsTests", dependencies: ["FreshetEmbeddings", "FreshetCore", "FreshetWorkload"]),
        .testTarget(name: "FreshetKafkaTests", dependencies: ["FreshetKafka", "FreshetTestSupport"]),
        .testTarget(name: "FreshetRedisTests", dependencies: ["FreshetRedis", "FreshetProcess", "FreshetTestSupport"]),
        .testTarget(name: "FreshetRuntimeTests", dependencies: ["FreshetRuntime", "FreshetCore", "FreshetFeatures", "FreshetRedis", "FreshetTestSupport", "FreshetWorkload"]),
        .testTarget(name: "FreshetIntegrationTests", dependencies: [
            "FreshetWorkload", "FreshetKafka", "FreshetRedis", "FreshetCore", "FreshetFeast", "FreshetTestSupport",
        ]),
        .testTarget(name: "FreshetWorkloadTests", dependencies: ["FreshetWorkload", "FreshetCore"]),
        // Shared by the test targets: child processes, local broker and Redis,
        // the in-memory cluster the engine driver runs on, the feature oracle.
        .target(name: "FreshetTestSupport",
                dependencies: ["FreshetProcess", "FreshetCore", "FreshetKafka", "FreshetRedis", "FreshetRuntime",
                               .product(name: "Logging", package: "swift-log")],
                path: "Tests/FreshetTestSupport"),
    ]
)
