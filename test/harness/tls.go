package harness

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/internal/security"
)

// TLSOptions put a cluster on TLS (Options.TLS): every broker listener and
// the controllers' listeners speak SSL, brokers dial leaders and
// controllers over TLS, and the controllers' Raft transport is TLS too.
// The harness makes a CA and a certificate per node (CN=<node name>, SANs
// 127.0.0.1 and localhost) and a client certificate (CN=harness-client).
type TLSOptions struct {
	// Mutual requires client certificates signed by the CA on every
	// listener (--tls-client-ca); the harness's clients present theirs.
	Mutual bool
}

// ClusterTLS is the TLS material of a cluster started with Options.TLS.
type ClusterTLS struct {
	CA *security.CA
	// Dir holds ca.pem, each node's <name>.pem and <name>.key, client.pem,
	// client.key and client.properties.
	Dir string
	// CAPath is ca.pem; ClientProperties is a Kafka client properties file
	// (kcat -F, skein --command-config) for the harness's client.
	CAPath, ClientProperties string
	// ClientCert and ClientKey are the client certificate's files.
	ClientCert, ClientKey string
	// Client is the harness clients' TLS configuration.
	Client *tls.Config
	opts   TLSOptions
}

// newClusterTLS makes the CA, the client certificate and its files.
func newClusterTLS(t testing.TB, dir string, opts TLSOptions) *ClusterTLS {
	t.Helper()
	ct := &ClusterTLS{Dir: filepath.Join(dir, "tls"), opts: opts}
	if err := os.MkdirAll(ct.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := security.NewCA("skein test CA", 24*time.Hour)
	if err != nil {
		t.Fatalf("harness: make CA: %v", err)
	}
	ct.CA = ca
	ct.CAPath = filepath.Join(ct.Dir, "ca.pem")
	if err := os.WriteFile(ct.CAPath, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	client := ct.Issue(t, "client", security.CertRequest{Subject: pkix.Name{CommonName: "harness-client", Organization: []string{"Skein"}}})
	ct.ClientCert, ct.ClientKey = client[0], client[1]
	props := fmt.Sprintf("security.protocol=SSL\nssl.ca.location=%s\n", ct.CAPath)
	if opts.Mutual {
		props += fmt.Sprintf("ssl.certificate.location=%s\nssl.key.location=%s\n", ct.ClientCert, ct.ClientKey)
	}
	ct.ClientProperties = filepath.Join(ct.Dir, "client.properties")
	if err := os.WriteFile(ct.ClientProperties, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ct.Client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if opts.Mutual {
		cert, err := tls.LoadX509KeyPair(ct.ClientCert, ct.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		ct.Client.Certificates = []tls.Certificate{cert}
	}
	return ct
}

// Issue has the CA sign a certificate (for 127.0.0.1 and localhost unless
// req names hosts) and writes it to <name>.pem and <name>.key in Dir; it
// returns the two paths.
func (ct *ClusterTLS) Issue(t testing.TB, name string, req security.CertRequest) [2]string {
	t.Helper()
	if req.Hosts == nil {
		req.Hosts = []string{"127.0.0.1", "localhost"}
	}
	issued, err := ct.CA.Issue(req)
	if err != nil {
		t.Fatalf("harness: issue %s: %v", name, err)
	}
	paths := [2]string{filepath.Join(ct.Dir, name+".pem"), filepath.Join(ct.Dir, name+".key")}
	if err := issued.WriteFiles(paths[0], paths[1]); err != nil {
		t.Fatal(err)
	}
	return paths
}

// nodeArgs issues n's certificate and returns its TLS flags.
func (ct *ClusterTLS) nodeArgs(t testing.TB, n *Node) []string {
	paths := ct.Issue(t, n.name(), security.CertRequest{Subject: pkix.Name{CommonName: n.name(), Organization: []string{"Skein"}}})
	n.TLSCert, n.TLSKey = paths[0], paths[1]
	args := []string{"--tls-cert", paths[0], "--tls-key", paths[1], "--tls-ca", ct.CAPath}
	if ct.opts.Mutual {
		args = append(args, "--tls-client-ca", ct.CAPath)
	}
	if n.Role == RoleBroker {
		return append(args, "--listener-protocol", "SSL", "--controller-protocol", "SSL")
	}
	return append(args, "--listener-protocol", "SSL", "--raft-protocol", "SSL")
}

// kgoOpts are the options a harness client needs to reach a TLS node.
func (ct *ClusterTLS) kgoOpts() []kgo.Opt {
	if ct == nil {
		return nil
	}
	return []kgo.Opt{kgo.DialTLSConfig(ct.Client)}
}
