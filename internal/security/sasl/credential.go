package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// Kafka's bounds on a SCRAM credential's iteration count (ScramMechanism's
// minIterations and maxIterations).
const (
	MinIterations = 4096
	MaxIterations = 16384
)

// saltBytes is the size of a salt this package makes (NewSalt).
const saltBytes = 32

// Credential is what the metadata log keeps of one user's password for one
// SCRAM mechanism (RFC 5802's stored credentials): never the password nor
// the salted password, only what authenticating needs.
type Credential struct {
	Salt       []byte
	Iterations int32
	// StoredKey is H(HMAC(SaltedPassword, "Client Key")); ServerKey is
	// HMAC(SaltedPassword, "Server Key").
	StoredKey []byte
	ServerKey []byte
}

// hashFor is the hash of a SCRAM mechanism, nil for any other.
func hashFor(m Mechanism) func() hash.Hash {
	switch m {
	case ScramSHA256:
		return sha256.New
	case ScramSHA512:
		return sha512.New
	}
	return nil
}

// NewSalt returns a fresh random salt.
func NewSalt() []byte {
	b := make([]byte, saltBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// SaltedPassword is RFC 5802's Hi(password, salt, iterations): PBKDF2 with
// the mechanism's HMAC. Like Kafka (and the clients), the password is used
// as UTF-8 bytes, without SASLprep.
func SaltedPassword(m Mechanism, password string, salt []byte, iterations int32) ([]byte, error) {
	h := hashFor(m)
	if h == nil {
		return nil, fmt.Errorf("%s is not a SCRAM mechanism", m)
	}
	if iterations < 1 {
		return nil, fmt.Errorf("iterations %d", iterations)
	}
	return pbkdf2.Key(h, password, salt, int(iterations), h().Size())
}

// CredentialFromSalted derives the stored credential from a salted password
// (what AlterUserScramCredentials carries).
func CredentialFromSalted(m Mechanism, salted, salt []byte, iterations int32) (Credential, error) {
	h := hashFor(m)
	if h == nil {
		return Credential{}, fmt.Errorf("%s is not a SCRAM mechanism", m)
	}
	clientKey := hmacOf(h, salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return Credential{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  stored.Sum(nil),
		ServerKey:  hmacOf(h, salted, "Server Key"),
	}, nil
}

// NewCredential salts and derives a password's credential.
func NewCredential(m Mechanism, password string, salt []byte, iterations int32) (Credential, error) {
	salted, err := SaltedPassword(m, password, salt, iterations)
	if err != nil {
		return Credential{}, err
	}
	return CredentialFromSalted(m, salted, salt, iterations)
}

// Matches says whether password is the one the credential was made from
// (compared in constant time on the StoredKey).
func (c Credential) Matches(m Mechanism, password string) bool {
	got, err := NewCredential(m, password, c.Salt, c.Iterations)
	return err == nil && hmac.Equal(got.StoredKey, c.StoredKey)
}

func hmacOf(h func() hash.Hash, key []byte, msg string) []byte {
	mac := hmac.New(h, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}
