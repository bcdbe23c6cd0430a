package cli

import (
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/internal/security"
)

// devTLS is the TLS material of `skein dev --tls`: a CA made at each
// start, one certificate for every node (the nodes share the host), and
// the files clients need.
type devTLS struct {
	material         *security.TLS
	caPath           string
	clientProperties string
}

// makeDevTLS makes a CA and a node certificate for host (and this
// machine's loopback names and host name), and writes into dataDir:
// ca.pem, client.properties (security.protocol=SSL, ssl.ca.location), and
// tls/node.pem, tls/node.key.
func makeDevTLS(dataDir, host string, log hclog.Logger) (*devTLS, error) {
	dir := filepath.Join(dataDir, "tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tls dir: %w", err)
	}
	ca, err := security.NewCA("skein dev CA", 365*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("make the dev CA: %w", err)
	}
	hosts := security.LocalHosts()
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		hosts = append(hosts, host)
	}
	node, err := ca.Issue(security.CertRequest{Subject: pkix.Name{CommonName: "skein-dev", Organization: []string{"Skein"}}, Hosts: hosts})
	if err != nil {
		return nil, fmt.Errorf("issue the dev node certificate: %w", err)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	d := &devTLS{caPath: filepath.Join(abs, "ca.pem"), clientProperties: filepath.Join(abs, "client.properties")}
	files := security.TLSFiles{Cert: filepath.Join(abs, "tls", "node.pem"), Key: filepath.Join(abs, "tls", "node.key"), CA: d.caPath}
	if err := security.WriteFileAtomic(d.caPath, ca.PEM, 0o644); err != nil {
		return nil, err
	}
	if err := node.WriteFiles(files.Cert, files.Key); err != nil {
		return nil, err
	}
	props := "# Kafka client properties for the skein dev cluster (kcat -F, skein --command-config)\n" +
		"security.protocol=SSL\nssl.ca.location=" + d.caPath + "\n"
	if err := security.WriteFileAtomic(d.clientProperties, []byte(props), 0o644); err != nil {
		return nil, err
	}
	if d.material, err = security.LoadTLS(files, log); err != nil {
		return nil, err
	}
	log.Info("dev TLS material written", "ca", d.caPath, "client_properties", d.clientProperties, "hosts", hosts)
	return d, nil
}
