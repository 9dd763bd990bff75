// swift-tools-version: 6.0
import PackageDescription

// A static C executable without the Swift runtime: -static-executable would link all of libswiftCore
// (9.5 MB, 1.6 MiB resident); without Swift's start-up object nothing pulls it in (0.8 MB, 0.7 MiB).
let cStatic: [LinkerSetting] = [.unsafeFlags(["-nostartfiles", "-static-stdlib", "-Xclang-linker", "-static"])]

let package = Package(
    name: "berth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
        .executable(name: "berth-shim", targets: ["berth-shim"]),
        .executable(name: "berth-runtime", targets: ["berth-runtime"]),
        .executable(name: "berth-init", targets: ["berth-init"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .systemLibrary(
            name: "CGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .systemLibrary(
            name: "CSeccomp",
            pkgConfig: "libseccomp",
            providers: [.apt(["libseccomp-dev"])]
        ),
        .target(name: "CBerthLinux"),
        // The per-container supervisor: C only, so that it stays small while the container runs.
        .executableTarget(name: "berth-shim", dependencies: ["CBerthLinux"], linkerSettings: cStatic),
        // PID 1 inside a container: forwards signals, reaps orphans.
        .executableTarget(name: "berth-init", linkerSettings: cStatic),
        .target(name: "BerthLinux", dependencies: ["CBerthLinux", "CSeccomp"]),
        // libdeflate inflates image layers about twice as fast as zlib.
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // The runtime without Foundation: `berth-runtime` starts a container in a few milliseconds.
        .target(name: "BerthRuntime", dependencies: ["BerthLinux", "BerthModel", "BerthYAMLCore", "CBerthLinux"]),
        .executableTarget(name: "berth-runtime", dependencies: ["BerthRuntime", "BerthLinux", "BerthModel"],
                         linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // Registry pulls: AsyncHTTPClient for the distribution API, swift-crypto for digests.
        .target(name: "BerthImage", dependencies: [
            "BerthRuntime", "BerthLinux", "BerthModel", "BerthYAML", "CBerthLinux", "CDeflate",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "BerthModel"),
        // How actors run and wake: the executor of those that block (subprocesses, fsync, libgit2), off Swift's
        // cooperative pool, and the wake-up of loops.
        .target(name: "BerthConcurrency"),
        .target(name: "BerthNode", dependencies: ["BerthConcurrency", "BerthRuntime", "BerthImage", "BerthYAML", "BerthLinux", "BerthModel", "BerthCluster", "BerthStore", "CBerthLinux"]),
        .target(name: "BerthGit", dependencies: ["CGit2"]),
        .target(name: "BerthSource", dependencies: ["BerthConcurrency", "BerthGit", "BerthYAML", "BerthModel"]),
        .target(name: "BerthStatus", dependencies: ["BerthConcurrency", "BerthGit", "BerthModel"]),
        // The records the control plane and the nodes share through the store, and their keys.
        .target(name: "BerthCluster", dependencies: ["BerthModel"]),
        // The embedded journal, etcd through its gRPC API (EtcdAPI is generated: scripts/generate-etcd-api), and
        // a server's node API (AsyncHTTPClient over TLS) for agents.
        .target(name: "BerthStore", dependencies: [
            "BerthModel",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "BerthScheduler", dependencies: ["BerthModel"]),
        .target(name: "BerthController", dependencies: ["BerthCluster", "BerthModel", "BerthScheduler", "BerthStore"]),
        // The daemon's services: source → control plane → store → node → status branch, and what they show.
        .target(name: "BerthDaemon", dependencies: [
            "BerthModel", "BerthCluster", "BerthConcurrency", "BerthGit", "BerthSource", "BerthStatus", "BerthStore", "BerthController", "BerthNode",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The HTTP API over the daemon (Hummingbird): Kubernetes-shaped JSON, logs, sync triggers, webhooks; the
        // node API over TLS for agents, with the cluster's CA (swift-certificates).
        .target(name: "BerthHTTP", dependencies: [
            "BerthDaemon", "BerthModel", "BerthCluster", "BerthController", "BerthNode", "BerthSource", "BerthStore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        // The YAML parser alone, without Foundation: the runtime reads config.json (JSON is YAML) with it.
        .target(name: "BerthYAMLCore", dependencies: ["CYAML", "BerthModel"]),
        .target(name: "BerthYAML", dependencies: ["BerthYAMLCore", "BerthModel"]),
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthModel",
                "BerthYAML",
                "BerthGit",
                "BerthSource",
                "BerthStatus",
                "BerthCluster",
                "BerthStore",
                "BerthScheduler",
                "BerthController",
                "BerthRuntime",
                "BerthImage",
                "BerthLinux",
                "BerthNode",
                "BerthDaemon",
                "BerthHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"])]
        ),
        // The benchmarks, apart from the shipped binary: they serve repositories and run etcd with the
        // same fixtures as the tests.
        .executableTarget(
            name: "berth-bench",
            dependencies: [
                "BerthModel", "BerthYAML", "BerthGit", "BerthSource", "BerthCluster", "BerthStore", "BerthScheduler",
                "BerthController", "BerthRuntime", "BerthLinux", "BerthNode", "BerthTestSupport", "BerthConcurrency",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "BerthModelTests", dependencies: ["BerthModel"]),
        .testTarget(name: "BerthNodeTests", dependencies: ["BerthNode", "BerthCluster", "BerthRuntime", "BerthLinux", "BerthModel", "BerthTestSupport"]),
        .testTarget(name: "BerthYAMLTests", dependencies: ["BerthYAML", "BerthModel"]),
        .testTarget(name: "BerthCLITests", dependencies: ["BerthYAML", "BerthStore", "BerthLinux", "BerthTestSupport"]),
        .target(name: "BerthTestSupport", dependencies: ["CBerthLinux"], path: "Tests/Support"),
        .testTarget(name: "BerthGitTests", dependencies: ["BerthGit", "BerthTestSupport"]),
        .testTarget(name: "BerthSourceTests", dependencies: ["BerthSource", "BerthGit", "BerthModel", "BerthTestSupport"]),
        .testTarget(name: "BerthStoreTests", dependencies: ["BerthStore", "BerthTestSupport"]),
        .testTarget(name: "BerthSchedulerTests", dependencies: ["BerthScheduler", "BerthModel"]),
        .testTarget(name: "BerthControllerTests", dependencies: ["BerthController", "BerthCluster", "BerthModel", "BerthNode", "BerthStore"]),
        .testTarget(name: "BerthHTTPTests", dependencies: [
            "BerthHTTP", "BerthSource", .product(name: "Crypto", package: "swift-crypto"), .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        .testTarget(name: "BerthDaemonTests", dependencies: ["BerthTestSupport"]),
        .testTarget(name: "BerthImageTests", dependencies: ["BerthImage", "BerthModel", "BerthRuntime", "BerthYAML", "BerthTestSupport"]),
        .testTarget(name: "BerthStatusTests", dependencies: ["BerthStatus", "BerthSource", "BerthGit", "BerthModel", "BerthTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
