package sasl

import (
	"errors"
	"fmt"

	"github.com/xdg-go/scram"
)

// scramExchange runs RFC 5802's exchange with xdg-go/scram: client-first,
// server-first, client-final, server-final.
type scramExchange struct {
	mechanism Mechanism
	conv      *scram.ServerConversation
	// missing is set when the lookup found no credential: the library
	// answers "unknown user", Kafka only "authentication failed".
	missing bool
}

func newScramExchange(m Mechanism, lookup Lookup) *scramExchange {
	x := &scramExchange{mechanism: m}
	hash := scram.SHA256
	if m == ScramSHA512 {
		hash = scram.SHA512
	}
	srv, err := hash.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, ok := lookup(user, m)
		if !ok {
			x.missing = true
			return scram.StoredCredentials{}, errors.New("unknown user")
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
			StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
		}, nil
	})
	if err != nil { // only for a nil lookup, which cannot be
		panic(err)
	}
	x.conv = srv.NewConversation()
	return x
}

// maxScramToken bounds a SCRAM message (a few hundred bytes in practice).
const maxScramToken = 64 << 10

func (x *scramExchange) Step(token []byte) ([]byte, bool, error) {
	if len(token) > maxScramToken {
		return nil, false, fmt.Errorf("%w: %s message of %d bytes", ErrAuthenticationFailed, x.mechanism, len(token))
	}
	answer, err := x.conv.Step(string(token))
	if err != nil {
		user := x.conv.Username()
		if x.missing {
			return nil, false, fmt.Errorf("%w: %s: user %q has no credential", ErrAuthenticationFailed, x.mechanism, user)
		}
		return nil, false, fmt.Errorf("%w: %s: user %q: %v", ErrAuthenticationFailed, x.mechanism, user, err)
	}
	if x.conv.Done() {
		if !x.conv.Valid() {
			return nil, false, fmt.Errorf("%w: %s: exchange ended without a valid proof", ErrAuthenticationFailed, x.mechanism)
		}
		return []byte(answer), true, nil
	}
	return []byte(answer), false, nil
}

func (x *scramExchange) User() string {
	if x.conv.Valid() {
		return x.conv.Username()
	}
	return ""
}
