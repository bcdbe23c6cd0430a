package security

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ClientConfig is the security part of Kafka client properties (the file
// kcat takes with -F and Kafka's tools with --command-config).
type ClientConfig struct {
	// Protocol is security.protocol (PLAINTEXT when absent).
	Protocol Protocol
	// CALocation is ssl.ca.location: PEM CA certificates to trust (the
	// system's roots when empty).
	CALocation string
	// CertLocation and KeyLocation are ssl.certificate.location and
	// ssl.key.location: the client certificate for mutual TLS.
	CertLocation, KeyLocation string
	// KeyPassword is ssl.key.password; encrypted keys are not supported,
	// so setting it is an error.
	KeyPassword string
	// EndpointIdentification is ssl.endpoint.identification.algorithm:
	// "https" (the default) checks the broker's host name against its
	// certificate, "none" (or empty) does not.
	EndpointIdentification string
	// SASL settings: sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
	// sasl.username, sasl.password.
	SASLMechanism string
	SASLUsername  string
	SASLPassword  string
	// Unknown are the keys this file set that Skein does not use.
	Unknown []string
}

// knownClientKeys are the properties ClientConfig reads; others are
// reported in Unknown.
var knownClientKeys = map[string]func(*ClientConfig, string){
	"security.protocol":                     func(c *ClientConfig, v string) { c.Protocol = Protocol(strings.ToUpper(v)) },
	"ssl.ca.location":                       func(c *ClientConfig, v string) { c.CALocation = v },
	"ssl.certificate.location":              func(c *ClientConfig, v string) { c.CertLocation = v },
	"ssl.key.location":                      func(c *ClientConfig, v string) { c.KeyLocation = v },
	"ssl.key.password":                      func(c *ClientConfig, v string) { c.KeyPassword = v },
	"ssl.endpoint.identification.algorithm": func(c *ClientConfig, v string) { c.EndpointIdentification = endpointAlgorithm(v) },
	"sasl.mechanism":                        func(c *ClientConfig, v string) { c.SASLMechanism = strings.ToUpper(v) },
	"sasl.mechanisms":                       func(c *ClientConfig, v string) { c.SASLMechanism = strings.ToUpper(v) }, // librdkafka's name
	"sasl.username":                         func(c *ClientConfig, v string) { c.SASLUsername = v },
	"sasl.password":                         func(c *ClientConfig, v string) { c.SASLPassword = v },
}

// ParseClientProperties parses Java-properties-style text: key=value (or
// key: value) lines, '#' and '!' comments, blank lines. Keys Skein does not
// use land in Unknown (the caller warns); a line without a key is an
// error.
func ParseClientProperties(data []byte) (ClientConfig, error) {
	var cfg ClientConfig
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		i := strings.IndexAny(s, "=:")
		if i <= 0 {
			return cfg, fmt.Errorf("line %d: want key=value, got %q", line, s)
		}
		key, value := strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		if set, ok := knownClientKeys[strings.ToLower(key)]; ok {
			set(&cfg, value)
		} else {
			cfg.Unknown = append(cfg.Unknown, key)
		}
	}
	if err := sc.Err(); err != nil {
		return cfg, err
	}
	sort.Strings(cfg.Unknown)
	return cfg, cfg.Validate()
}

// LoadClientProperties reads and parses a client properties file.
func LoadClientProperties(path string) (ClientConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ClientConfig{}, err
	}
	cfg, err := ParseClientProperties(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks the settings against each other.
func (c ClientConfig) Validate() error {
	if c.Protocol != "" {
		if _, err := ParseProtocol(string(c.Protocol)); err != nil {
			return fmt.Errorf("security.protocol: %w", err)
		}
	}
	if (c.CertLocation == "") != (c.KeyLocation == "") {
		return errors.New("ssl.certificate.location and ssl.key.location go together")
	}
	if c.KeyPassword != "" {
		return errors.New("ssl.key.password: encrypted keys are not supported; give an unencrypted PEM key")
	}
	switch c.EndpointIdentification {
	case "", "https", "none":
	default:
		return fmt.Errorf("ssl.endpoint.identification.algorithm %q: use https or none", c.EndpointIdentification)
	}
	switch c.SASLMechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("sasl.mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	if c.protocol().SASL() && c.SASLMechanism == "" {
		return fmt.Errorf("security.protocol %s needs sasl.mechanism", c.protocol())
	}
	return nil
}

func (c ClientConfig) protocol() Protocol {
	if c.Protocol == "" {
		return Plaintext
	}
	return c.Protocol
}

// ProtocolOrDefault is security.protocol, PLAINTEXT when absent.
func (c ClientConfig) ProtocolOrDefault() Protocol { return c.protocol() }

// TLSConfig is the client's TLS configuration, nil when its protocol is
// not TLS. The server name is left for the dialer (kgo takes the host it
// dials).
func (c ClientConfig) TLSConfig() (*tls.Config, error) {
	if !c.protocol().TLS() {
		return nil, nil
	}
	cfg := baseConfig()
	if c.CALocation != "" {
		pool, err := loadPool(c.CALocation)
		if err != nil {
			return nil, fmt.Errorf("ssl.ca.location: %w", err)
		}
		cfg.RootCAs = pool
	}
	if c.CertLocation != "" {
		cert, err := tls.LoadX509KeyPair(c.CertLocation, c.KeyLocation)
		if err != nil {
			return nil, fmt.Errorf("ssl.certificate.location/ssl.key.location: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.EndpointIdentification == "none" {
		// The chain is still checked, only the host name is not (Kafka's
		// ssl.endpoint.identification.algorithm= with an empty value).
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyServer(cs, roots, "")
		}
	}
	return cfg, nil
}

// endpointAlgorithm normalizes ssl.endpoint.identification.algorithm: an
// empty value turns the check off, as in Kafka.
func endpointAlgorithm(v string) string {
	if v = strings.ToLower(v); v == "" {
		return "none"
	}
	return v
}
