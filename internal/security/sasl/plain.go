package sasl

import (
	"bytes"
	"fmt"
)

// plainExchange is RFC 4616's PLAIN: one token, [authzid] NUL authcid NUL
// passwd. As Kafka, an authorization id other than the user is refused.
// The password is checked against the user's SCRAM credentials, the
// strongest mechanism first.
type plainExchange struct {
	lookup Lookup
	user   string
}

// maxPlainToken bounds a PLAIN token (Kafka bounds the whole SASL frame;
// a user name and password need nowhere near this).
const maxPlainToken = 64 << 10

func (p *plainExchange) Step(token []byte) ([]byte, bool, error) {
	authz, user, pass, err := parsePlain(token)
	if err != nil {
		return nil, false, err
	}
	if authz != "" && authz != user {
		return nil, false, fmt.Errorf("%w: authorization id %q differs from user %q", ErrAuthenticationFailed, authz, user)
	}
	for _, m := range ScramMechanisms {
		if c, ok := p.lookup(user, m); ok && c.Matches(m, pass) {
			p.user = user
			return nil, true, nil
		}
	}
	return nil, false, fmt.Errorf("%w: user %q: unknown user or wrong password", ErrAuthenticationFailed, user)
}

func (p *plainExchange) User() string { return p.user }

// parsePlain splits a PLAIN token. User and password must be non-empty.
func parsePlain(token []byte) (authz, user, pass string, err error) {
	if len(token) > maxPlainToken {
		return "", "", "", fmt.Errorf("%w: PLAIN token of %d bytes", ErrAuthenticationFailed, len(token))
	}
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: malformed PLAIN token: want authzid NUL user NUL password", ErrAuthenticationFailed)
	}
	if len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fmt.Errorf("%w: PLAIN token without user or password", ErrAuthenticationFailed)
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}
