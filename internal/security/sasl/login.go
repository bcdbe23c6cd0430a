package sasl

import (
	"errors"
	"fmt"

	ksasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Login is how a node logs in to another's SASL listener (a follower to
// its leader, a broker or a controller to a controller): mechanism, user
// and password. The client side of the exchange is franz-go's.
type Login struct {
	Mechanism Mechanism
	User      string
	Password  string
}

// Set says whether a user was given.
func (l Login) Set() bool { return l.User != "" }

// Validate checks a login that is needed.
func (l Login) Validate() error {
	if l.User == "" || l.Password == "" {
		return errors.New("a SASL login needs a user and a password")
	}
	if _, err := ParseMechanism(string(l.Mechanism)); err != nil {
		return fmt.Errorf("SASL login: %w", err)
	}
	return nil
}

// ClientMechanism is the login as a franz-go SASL mechanism (kgo.SASL, or
// driven by hand on a raw connection).
func (l Login) ClientMechanism() ksasl.Mechanism {
	switch l.Mechanism {
	case Plain:
		return plain.Auth{User: l.User, Pass: l.Password}.AsMechanism()
	case ScramSHA256:
		return scram.Auth{User: l.User, Pass: l.Password}.AsSha256Mechanism()
	default:
		return scram.Auth{User: l.User, Pass: l.Password}.AsSha512Mechanism()
	}
}
