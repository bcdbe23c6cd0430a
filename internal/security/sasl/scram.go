package sasl

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/xdg-go/scram"
)

// scramExchange is RFC 5802's exchange: client-first, server-first,
// client-final, server-final.
//
// The first half is github.com/xdg-go/scram's server conversation: it
// parses client-first (GS2 header, SASLname decoding, extensions), looks
// the user up and makes the server nonce. The second half, checking the
// client's proof, is here, because Kafka accepts a client-final nonce that
// merely ends with the server-first nonce (ScramSaslServer's endsWith) and
// librdkafka depends on it: it sends its client nonce twice
// ("r=" + cnonce + server nonce, where the server nonce already starts with
// cnonce). xdg-go/scram requires the exact nonce, so kcat could never log
// in. The proof covers the client-final message as sent, so the lenient
// comparison weakens nothing: the nonce must still carry the server's
// fresh part, at the end.
type scramExchange struct {
	mechanism Mechanism
	hash      func() hash.Hash
	conv      *scram.ServerConversation
	// cred is the user's credential, found during client-first; missing
	// is set when there is none.
	cred    Credential
	missing bool
	// After server-first: the GS2 header and client-first-bare of the
	// client's first message, the server-first message and its nonce.
	gs2Header, clientFirstBare, serverFirst, nonce string
	step                                           int
	user                                           string
}

func newScramExchange(m Mechanism, lookup Lookup) *scramExchange {
	x := &scramExchange{mechanism: m, hash: hashFor(m)}
	gen := scram.SHA256
	if m == ScramSHA512 {
		gen = scram.SHA512
	}
	srv, err := gen.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, ok := lookup(user, m)
		if !ok {
			x.missing = true
			return scram.StoredCredentials{}, errors.New("unknown user")
		}
		x.cred = c
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
		return nil, false, x.fail("message of %d bytes", len(token))
	}
	x.step++
	switch x.step {
	case 1:
		return x.clientFirst(string(token))
	case 2:
		return x.clientFinal(string(token))
	}
	return nil, false, x.fail("message after the exchange")
}

func (x *scramExchange) fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrAuthenticationFailed, x.mechanism, fmt.Sprintf(format, args...))
}

func (x *scramExchange) clientFirst(msg string) ([]byte, bool, error) {
	answer, err := x.conv.Step(msg)
	user := x.conv.Username()
	if err != nil {
		if x.missing {
			return nil, false, x.fail("user %q has no credential", user)
		}
		return nil, false, x.fail("user %q: client-first: %v", user, err)
	}
	// The library accepted the message, so it has a GS2 header of two
	// fields before the bare message; the answer starts with r=NONCE.
	i := strings.IndexByte(msg, ',')
	j := strings.IndexByte(msg[i+1:], ',') + i + 1
	x.gs2Header, x.clientFirstBare, x.serverFirst = msg[:j+1], msg[j+1:], answer
	nonce, _, _ := strings.Cut(strings.TrimPrefix(answer, "r="), ",")
	x.nonce = nonce
	x.user = user
	return []byte(answer), false, nil
}

// clientFinal checks client-final-message = channel-binding "," nonce
// ["," extensions] "," proof, and answers server-final ("v=" signature).
func (x *scramExchange) clientFinal(msg string) ([]byte, bool, error) {
	last := strings.LastIndex(msg, ",")
	if last < 0 || !strings.HasPrefix(msg[last+1:], "p=") {
		return nil, false, x.fail("user %q: client-final without a proof", x.user)
	}
	withoutProof := msg[:last]
	proof, err := base64.StdEncoding.DecodeString(msg[last+3:])
	if err != nil {
		return nil, false, x.fail("user %q: client-final proof is not base64", x.user)
	}
	fields := strings.Split(withoutProof, ",")
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "c=") || !strings.HasPrefix(fields[1], "r=") {
		return nil, false, x.fail("user %q: malformed client-final", x.user)
	}
	binding, err := base64.StdEncoding.DecodeString(fields[0][2:])
	if err != nil || string(binding) != x.gs2Header {
		return nil, false, x.fail("user %q: channel binding does not match the GS2 header", x.user)
	}
	if !strings.HasSuffix(fields[1][2:], x.nonce) {
		return nil, false, x.fail("user %q: the client-final nonce does not end with the server's", x.user)
	}
	authMessage := x.clientFirstBare + "," + x.serverFirst + "," + withoutProof
	clientSignature := hmacOf(x.hash, x.cred.StoredKey, authMessage)
	if len(proof) != len(clientSignature) {
		return nil, false, x.fail("user %q: proof of %d bytes", x.user, len(proof))
	}
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ clientSignature[i]
	}
	h := x.hash()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), x.cred.StoredKey) {
		return nil, false, x.fail("user %q: invalid proof (wrong password)", x.user)
	}
	x.step = 3
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacOf(x.hash, x.cred.ServerKey, authMessage))), true, nil
}

func (x *scramExchange) User() string {
	if x.step == 3 {
		return x.user
	}
	return ""
}
