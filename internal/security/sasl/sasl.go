// Package sasl is the server side of Kafka's SASL authentication (KIP-43,
// KIP-84): the mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, and the
// SCRAM credentials (salt, iterations, StoredKey, ServerKey) they check
// against. The SCRAM exchange itself is github.com/xdg-go/scram's; PLAIN
// checks its password against the same SCRAM credentials (derived again with
// the stored salt and iterations), so no password is ever stored.
//
// The Kafka framing (SaslHandshake, SaslAuthenticate) and each connection's
// state live in internal/wire; this package only runs one exchange at a
// time, token in, token out.
package sasl

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// Mechanism is a SASL mechanism name as Kafka spells it.
type Mechanism string

// The mechanisms Skein serves.
const (
	Plain       Mechanism = "PLAIN"
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

// Mechanisms are all of them (the default of --sasl-enabled-mechanisms).
var Mechanisms = []Mechanism{Plain, ScramSHA256, ScramSHA512}

// ScramMechanisms are the SCRAM ones, the strongest first (PLAIN tries them
// in this order).
var ScramMechanisms = []Mechanism{ScramSHA512, ScramSHA256}

// ParseMechanism parses a mechanism name (case-insensitive).
func ParseMechanism(s string) (Mechanism, error) {
	m := Mechanism(strings.ToUpper(strings.TrimSpace(s)))
	for _, k := range Mechanisms {
		if m == k {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown SASL mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s)
}

// ParseMechanisms parses a comma-separated list (Kafka's
// sasl.enabled.mechanisms); duplicates are dropped.
func ParseMechanisms(s string) ([]Mechanism, error) {
	var out []Mechanism
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		m, err := ParseMechanism(part)
		if err != nil {
			return nil, err
		}
		dup := false
		for _, o := range out {
			dup = dup || o == m
		}
		if !dup {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no SASL mechanism given")
	}
	return out, nil
}

// ScramType is the mechanism's number in AlterUserScramCredentials and
// DescribeUserScramCredentials (Kafka's ScramMechanism: 1 SCRAM-SHA-256,
// 2 SCRAM-SHA-512), 0 for PLAIN.
func (m Mechanism) ScramType() int8 {
	switch m {
	case ScramSHA256:
		return 1
	case ScramSHA512:
		return 2
	}
	return 0
}

// ScramMechanismOf is the SCRAM mechanism numbered t, false for another
// number.
func ScramMechanismOf(t int8) (Mechanism, bool) {
	switch t {
	case 1:
		return ScramSHA256, true
	case 2:
		return ScramSHA512, true
	}
	return "", false
}

// Lookup returns a user's credential for a SCRAM mechanism, false when the
// user has none. It is called on the connection's goroutine during an
// exchange and must be safe for concurrent use (it reads the latest
// metadata image).
type Lookup func(user string, m Mechanism) (Credential, bool)

// ErrAuthenticationFailed is every refusal: wrong password, unknown user,
// malformed token. Clients are told no more than that (Kafka's
// SASL_AUTHENTICATION_FAILED), the log says why.
var ErrAuthenticationFailed = errors.New("authentication failed")

// Exchange is one authentication in progress. Step takes the client's next
// token and returns the server's answer; done is true once the exchange
// ended successfully (the answer, possibly empty, is the last one). An
// error ends the exchange: the client failed to authenticate. An Exchange
// is used by one goroutine.
type Exchange interface {
	Step(token []byte) (answer []byte, done bool, err error)
	// User is the authenticated user once Step returned done.
	User() string
}

// Server starts exchanges for the enabled mechanisms and counts their
// outcomes. Safe for concurrent use.
type Server struct {
	enabled []Mechanism
	lookup  Lookup
	counts  map[Mechanism]*Counts
}

// Counts are the outcomes of the exchanges of one mechanism.
type Counts struct {
	Succeeded atomic.Uint64
	Failed    atomic.Uint64
}

// NewServer serves the enabled mechanisms with the credentials lookup
// returns.
func NewServer(enabled []Mechanism, lookup Lookup) (*Server, error) {
	if len(enabled) == 0 {
		return nil, errors.New("sasl: no mechanism enabled")
	}
	if lookup == nil {
		return nil, errors.New("sasl: no credential lookup")
	}
	s := &Server{enabled: append([]Mechanism(nil), enabled...), lookup: lookup, counts: map[Mechanism]*Counts{}}
	for _, m := range enabled {
		if _, err := ParseMechanism(string(m)); err != nil {
			return nil, err
		}
		s.counts[m] = &Counts{}
	}
	return s, nil
}

// Enabled lists the enabled mechanism names (SaslHandshake's answer).
func (s *Server) Enabled() []string {
	out := make([]string, len(s.enabled))
	for i, m := range s.enabled {
		out[i] = string(m)
	}
	return out
}

// Counts are the outcomes of mechanism m's exchanges, nil when m is not
// enabled.
func (s *Server) Counts(m Mechanism) *Counts { return s.counts[m] }

// Start begins an exchange of mechanism name (as the client spelled it in
// SaslHandshake: Kafka compares exactly). ok is false when the mechanism is
// not enabled.
func (s *Server) Start(name string) (ex Exchange, m Mechanism, ok bool) {
	for _, e := range s.enabled {
		if string(e) == name {
			m = e
			ok = true
		}
	}
	if !ok {
		return nil, "", false
	}
	var inner Exchange
	if m == Plain {
		inner = &plainExchange{lookup: s.lookup}
	} else {
		inner = newScramExchange(m, s.lookup)
	}
	return &countingExchange{inner: inner, counts: s.counts[m]}, m, true
}

// countingExchange counts an exchange's outcome once.
type countingExchange struct {
	inner  Exchange
	counts *Counts
	ended  bool
}

func (c *countingExchange) Step(token []byte) ([]byte, bool, error) {
	if c.ended {
		return nil, false, fmt.Errorf("%w: the exchange has ended", ErrAuthenticationFailed)
	}
	answer, done, err := c.inner.Step(token)
	switch {
	case err != nil:
		c.ended = true
		c.counts.Failed.Add(1)
	case done:
		c.ended = true
		c.counts.Succeeded.Add(1)
	}
	return answer, done, err
}

func (c *countingExchange) User() string { return c.inner.User() }
