package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/internal/security"
)

// tlsFlags are a node's (broker's, controller's) TLS material.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("tls-cert", "PEM certificate (chain) of the node's SSL listeners, also its client certificate towards peers that ask for one; reloaded on SIGHUP and when the file changes", ""),
		stringFlag("tls-key", "PEM private key of --tls-cert", ""),
		stringFlag("tls-client-ca", "PEM CA bundle: when set, clients of the SSL listeners must present a certificate it signed (mutual TLS), whose subject becomes their principal User:CN=...", ""),
		stringFlag("tls-ca", "PEM CA bundle the node trusts when it dials SSL peers (leaders, controllers); default: the system's roots", ""),
		durationFlag("tls-reload-interval", "how often the TLS files are checked for changes", security.DefaultReloadInterval),
	}
}

// protocolFlag is a flag holding a security protocol.
func protocolValue(c *cli.Context, name string) (security.Protocol, error) {
	p, err := security.ParseProtocol(c.String(name))
	if err != nil {
		return "", fmt.Errorf("--%s: %w", name, err)
	}
	return p, nil
}

// loadNodeTLS loads the TLS flags' files; nil when none is given.
func loadNodeTLS(c *cli.Context, log hclog.Logger) (*security.TLS, error) {
	files := security.TLSFiles{
		Cert:     c.String("tls-cert"),
		Key:      c.String("tls-key"),
		ClientCA: c.String("tls-client-ca"),
		CA:       c.String("tls-ca"),
	}
	if files.Empty() {
		return nil, nil
	}
	t, err := security.LoadTLS(files, log)
	if err != nil {
		return nil, err
	}
	if leaf := t.Leaf(); leaf != nil {
		log.Info("tls certificate loaded", "cert", files.Cert, "subject", leaf.Subject.String(),
			"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC(), "mutual_tls", files.ClientCA != "")
	}
	return t, nil
}

// watchTLS reloads t on SIGHUP and when its files change, until ctx ends.
func watchTLS(ctx context.Context, c *cli.Context, t *security.TLS) {
	if t == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = t.Reload("SIGHUP")
			}
		}
	}()
	go t.Watch(ctx, c.Duration("tls-reload-interval"))
}

// commandConfigFlag is the client commands' --command-config.
func commandConfigFlag() cli.Flag {
	return stringFlag("command-config", "Kafka client properties file (security.protocol, ssl.ca.location, ssl.certificate.location, "+
		"ssl.key.location, ssl.endpoint.identification.algorithm, sasl.mechanism, sasl.username, sasl.password): "+
		"the file kcat takes with -F", "")
}

// clientSecurityOpts are the franz-go options --command-config asks for
// (TLS, SASL); none without the flag. Keys Skein does not use are warned
// about once.
func clientSecurityOpts(c *cli.Context, log hclog.Logger) ([]kgo.Opt, error) {
	path := c.String("command-config")
	if path == "" {
		return nil, nil
	}
	cfg, err := security.LoadClientProperties(path)
	if err != nil {
		return nil, fmt.Errorf("--command-config: %w", err)
	}
	if len(cfg.Unknown) > 0 {
		log.Warn("--command-config: ignoring properties Skein does not use", "file", path, "keys", strings.Join(cfg.Unknown, ","))
	}
	return kgoSecurityOpts(cfg)
}

// kgoSecurityOpts maps client properties onto franz-go options.
func kgoSecurityOpts(cfg security.ClientConfig) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	if cfg.ProtocolOrDefault().SASL() {
		switch cfg.SASLMechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: cfg.SASLUsername, Pass: cfg.SASLPassword}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASLUsername, Pass: cfg.SASLPassword}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASLUsername, Pass: cfg.SASLPassword}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}
