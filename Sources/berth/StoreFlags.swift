import ArgumentParser
import BerthDaemon
import BerthStore
import Foundation

/// Where the cluster state lives: the embedded store under the state directory, or etcd.
struct StoreFlags: ParsableArguments {
    @Option(help: "Cluster store: 'embedded' (STATE_DIR/store, one machine) or etcd://HOST:PORT[,HOST:PORT…] (etcds:// for TLS).")
    var store = "embedded"

    @Option(help: "PEM file of the CA that signed the etcd members' certificates.")
    var etcdCa: String?

    @Option(help: "PEM client certificate for etcd (with --etcd-key).")
    var etcdCert: String?

    @Option(help: "PEM private key of --etcd-cert.")
    var etcdKey: String?

    @Option(help: "etcd user name (with --etcd-password-file).")
    var etcdUser: String?

    @Option(help: "File holding the etcd user's password.")
    var etcdPasswordFile: String?

    func choice() throws -> StoreChoice {
        guard store != "embedded" else {
            guard etcdCa == nil, etcdCert == nil, etcdKey == nil, etcdUser == nil, etcdPasswordFile == nil else {
                throw ValidationError("--etcd-* options need --store etcd://…")
            }
            return .embedded
        }
        var options: EtcdOptions
        do { options = try EtcdOptions(url: store) } catch { throw ValidationError("--store: \(error)") }
        options.caFile = etcdCa
        options.certFile = etcdCert
        options.keyFile = etcdKey
        if (etcdCert == nil) != (etcdKey == nil) { throw ValidationError("give both --etcd-cert and --etcd-key, or neither") }
        if etcdCa != nil || etcdCert != nil { options.tls = true }
        if (etcdUser == nil) != (etcdPasswordFile == nil) { throw ValidationError("give both --etcd-user and --etcd-password-file, or neither") }
        options.username = etcdUser
        if let file = etcdPasswordFile {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            options.password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        }
        return .etcd(options)
    }
}
