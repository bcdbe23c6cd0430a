package security

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// AnonymousPrincipal is the principal of a connection that did not
// authenticate (Kafka's User:ANONYMOUS).
const AnonymousPrincipal = "User:ANONYMOUS"

// TLSFiles names a node's TLS material (PEM files).
type TLSFiles struct {
	// Cert and Key are the node's certificate (chain) and private key: the
	// server certificate of its TLS listeners, and its client certificate
	// when it dials a peer that asks for one (Kafka uses the broker's
	// keystore both ways).
	Cert, Key string
	// ClientCA, when set, turns on mutual TLS on the node's TLS listeners:
	// clients must present a certificate signed by one of its CAs, and the
	// certificate's subject becomes the connection's principal.
	ClientCA string
	// CA is what the node trusts when it dials a TLS peer (a leader, a
	// controller); empty: the system's roots.
	CA string
}

// Empty says whether no file is named.
func (f TLSFiles) Empty() bool { return f == TLSFiles{} }

// DefaultReloadInterval is how often a TLS's Watch looks at the files'
// modification times.
const DefaultReloadInterval = 2 * time.Second

// TLS is a node's TLS material, reloadable: new handshakes (server and
// client side) use what the last successful Reload loaded; connections
// already up keep the certificate they started with.
//
// Safe for concurrent use.
type TLS struct {
	files TLSFiles
	log   hclog.Logger

	mu struct {
		sync.Mutex
		cert      *tls.Certificate // nil without Cert/Key
		clientCAs *x509.CertPool   // nil without ClientCA
		roots     *x509.CertPool   // nil without CA (system roots)
		stamp     string           // the files' sizes and mtimes at the last load
	}
}

// LoadTLS loads files. It fails when a named file does not load: a node
// must not start with material it cannot use.
func LoadTLS(files TLSFiles, log hclog.Logger) (*TLS, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if (files.Cert == "") != (files.Key == "") {
		return nil, errors.New("tls: give both a certificate and a key (--tls-cert, --tls-key)")
	}
	t := &TLS{files: files, log: log}
	if err := t.load(); err != nil {
		return nil, err
	}
	return t, nil
}

// HasCert says whether a certificate was given (needed to serve TLS).
func (t *TLS) HasCert() bool { return t != nil && t.files.Cert != "" }

// Files are the files t loads.
func (t *TLS) Files() TLSFiles { return t.files }

func (t *TLS) stampFiles() string {
	var s string
	for _, p := range []string{t.files.Cert, t.files.Key, t.files.ClientCA, t.files.CA} {
		if p == "" {
			s += "|"
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d@%d|", fi.Size(), fi.ModTime().UnixNano())
		} else {
			s += "?|"
		}
	}
	return s
}

func (t *TLS) load() error {
	stamp := t.stampFiles()
	var cert *tls.Certificate
	if t.files.Cert != "" {
		c, err := tls.LoadX509KeyPair(t.files.Cert, t.files.Key)
		if err != nil {
			return fmt.Errorf("tls: load certificate %s and key %s: %w", t.files.Cert, t.files.Key, err)
		}
		cert = &c
	}
	clientCAs, err := loadPool(t.files.ClientCA)
	if err != nil {
		return fmt.Errorf("tls: client CA: %w", err)
	}
	roots, err := loadPool(t.files.CA)
	if err != nil {
		return fmt.Errorf("tls: CA: %w", err)
	}
	t.mu.Lock()
	t.mu.cert, t.mu.clientCAs, t.mu.roots, t.mu.stamp = cert, clientCAs, roots, stamp
	t.mu.Unlock()
	return nil
}

// loadPool reads a PEM bundle of CA certificates; "" is nil.
func loadPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Reload loads the files again. On failure the material loaded before
// stays in use and the error says why; either way one line is logged.
func (t *TLS) Reload(reason string) error {
	if err := t.load(); err != nil {
		t.log.Error("tls reload failed; keeping the certificate in use", "reason", reason, "error", err)
		// Do not retry the same broken files on every poll.
		t.mu.Lock()
		t.mu.stamp = t.stampFiles()
		t.mu.Unlock()
		return err
	}
	t.log.Info("tls material reloaded", "reason", reason, "cert", t.files.Cert, "certificate", t.describe())
	return nil
}

// describe names the certificate in use (subject, serial, expiry) for logs.
func (t *TLS) describe() string {
	leaf := t.Leaf()
	if leaf == nil {
		return "none"
	}
	return fmt.Sprintf("subject=%q serial=%s not_after=%s", leaf.Subject.String(), leaf.SerialNumber.Text(16), leaf.NotAfter.UTC().Format(time.RFC3339))
}

// Leaf is the certificate in use, parsed (nil without one).
func (t *TLS) Leaf() *x509.Certificate {
	t.mu.Lock()
	c := t.mu.cert
	t.mu.Unlock()
	if c == nil {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// Watch reloads the material whenever a file's size or modification
// time changes (checked every interval) until ctx ends.
func (t *TLS) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		last := t.mu.stamp
		t.mu.Unlock()
		if t.stampFiles() != last {
			_ = t.Reload("files changed")
		}
	}
}

// baseConfig is what every Skein TLS configuration starts from: TLS 1.2 or
// later with Go's default (secure) cipher suites.
func baseConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// ServerConfig is the configuration of a TLS listener: each handshake
// takes the certificate and client CAs loaded last. With a client CA,
// clients must present a certificate it signed.
func (t *TLS) ServerConfig() *tls.Config {
	cfg := baseConfig()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		t.mu.Lock()
		cert, clientCAs := t.mu.cert, t.mu.clientCAs
		t.mu.Unlock()
		if cert == nil {
			return nil, errors.New("no server certificate (--tls-cert)")
		}
		c := baseConfig()
		c.Certificates = []tls.Certificate{*cert}
		if clientCAs != nil {
			c.ClientCAs = clientCAs
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return c, nil
	}
	return cfg
}

// ClientConfig is the configuration of a node dialing a TLS peer (a
// follower its leader, a broker its controller), as loaded now: it
// trusts CA (the system's roots without one) and presents the node's
// certificate when the peer asks for one. crypto/tls checks the chain and
// the server name, which the dialer sets (DialTLS: the dialled host).
func (t *TLS) ClientConfig() *tls.Config {
	cfg := baseConfig()
	t.mu.Lock()
	cfg.RootCAs = t.mu.roots
	t.mu.Unlock()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		t.mu.Lock()
		cert := t.mu.cert
		t.mu.Unlock()
		if cert == nil {
			return &tls.Certificate{}, nil // none: the peer refuses if it needs one
		}
		return cert, nil
	}
	return cfg
}

// Dialer dials TLS peers with the material loaded at each dial (a
// reloaded CA applies to the next connection), for kgo.Dialer and the
// replica fetchers.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial returns t's Dialer: a TCP connection to addr, then a handshake
// with ClientConfig naming addr's host as the server. ctx bounds both.
func (t *TLS) Dial() Dialer {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: dialTimeout}
		return DialTLS(ctx, &d, addr, t.ClientConfig())
	}
}

// dialTimeout bounds a dial whose context has no deadline.
const dialTimeout = 10 * time.Second

// verifyServer does what crypto/tls does for a client with RootCAs =
// roots and ServerName = name ("": the chain alone).
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// DialTLS dials addr and completes a TLS handshake with cfg, naming the
// dialled host as the server (unless cfg names one).
func DialTLS(ctx context.Context, d *net.Dialer, addr string, cfg *tls.Config) (net.Conn, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			_ = nc.Close()
			return nil, err
		}
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// PeerPrincipal is the principal of a TLS connection's verified client
// certificate, Kafka's "User:" + the subject's distinguished name
// (CN=...,OU=...,O=...); AnonymousPrincipal without one.
func PeerPrincipal(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return AnonymousPrincipal
	}
	return "User:" + cs.PeerCertificates[0].Subject.String()
}

// Fingerprint is a certificate's SHA-256, hex, for logs and tests.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
