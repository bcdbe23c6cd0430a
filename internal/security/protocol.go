// Package security holds what Skein's listeners and clients share about
// Kafka's security protocols: the protocol of each listener (Kafka's
// listener.security.protocol.map), TLS configuration and, later, SASL.
package security

import (
	"fmt"
	"strings"
)

// Protocol is a Kafka security protocol.
type Protocol string

// Kafka's security protocols.
const (
	Plaintext     Protocol = "PLAINTEXT"
	SSL           Protocol = "SSL"
	SASLPlaintext Protocol = "SASL_PLAINTEXT"
	SASLSSL       Protocol = "SASL_SSL"
)

// Protocols lists every protocol, in Kafka's order.
var Protocols = []Protocol{Plaintext, SSL, SASLPlaintext, SASLSSL}

// ParseProtocol parses a protocol name (case-insensitive).
func ParseProtocol(s string) (Protocol, error) {
	p := Protocol(strings.ToUpper(strings.TrimSpace(s)))
	for _, q := range Protocols {
		if p == q {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown security protocol %q: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", s)
}

// TLS says whether connections of this protocol are TLS.
func (p Protocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL says whether clients of this protocol authenticate with SASL.
func (p Protocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// String is the protocol's name.
func (p Protocol) String() string { return string(p) }

// ProtocolMap is Kafka's listener.security.protocol.map: the protocol of
// each named listener.
type ProtocolMap map[string]Protocol

// ParseProtocolMap parses NAME:PROTOCOL[,NAME:PROTOCOL...] (names in upper
// case). An empty string is an empty map.
func ParseProtocolMap(s string) (ProtocolMap, error) {
	m := ProtocolMap{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, proto, ok := strings.Cut(part, ":")
		name = strings.ToUpper(strings.TrimSpace(name))
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want NAME:PROTOCOL", part)
		}
		p, err := ParseProtocol(proto)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("listener %s is given twice", name)
		}
		m[name] = p
	}
	return m, nil
}

// For is the protocol of the listener named name: the map's entry, else
// the name itself when it names a protocol (Kafka's default map, where a
// listener called SSL speaks SSL), else def (PLAINTEXT when empty).
func (m ProtocolMap) For(name string, def Protocol) Protocol {
	name = strings.ToUpper(name)
	if p, ok := m[name]; ok {
		return p
	}
	if p, err := ParseProtocol(name); err == nil {
		return p
	}
	if def == "" {
		return Plaintext
	}
	return def
}
