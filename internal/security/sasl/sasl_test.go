package sasl

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	ksasl "github.com/twmb/franz-go/pkg/sasl"
	kplain "github.com/twmb/franz-go/pkg/sasl/plain"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

// store holds alice's credentials for both SCRAM mechanisms (password
// "alice-secret") and bob's for SCRAM-SHA-256 only ("bob-secret").
func testStore(t testing.TB) Lookup {
	creds := map[string]map[Mechanism]Credential{}
	add := func(user, pass string, ms ...Mechanism) {
		for _, m := range ms {
			c, err := NewCredential(m, pass, NewSalt(), MinIterations)
			if err != nil {
				t.Fatal(err)
			}
			if creds[user] == nil {
				creds[user] = map[Mechanism]Credential{}
			}
			creds[user][m] = c
		}
	}
	add("alice", "alice-secret", ScramSHA256, ScramSHA512)
	add("bob", "bob-secret", ScramSHA256)
	return func(user string, m Mechanism) (Credential, bool) {
		c, ok := creds[user][m]
		return c, ok
	}
}

// run drives a franz-go client mechanism against a server exchange, as the
// wire layer does with SaslAuthenticate.
func run(t *testing.T, srv *Server, client ksasl.Mechanism) (string, error) {
	t.Helper()
	ex, _, ok := srv.Start(client.Name())
	if !ok {
		return "", errors.New("mechanism not enabled")
	}
	sess, token, err := client.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		answer, done, err := ex.Step(token)
		if err != nil {
			return "", err
		}
		cdone, next, cerr := sess.Challenge(answer)
		if cerr != nil {
			t.Fatalf("client refused the server's answer: %v", cerr)
		}
		if done {
			if !cdone {
				t.Fatalf("server done, client not")
			}
			return ex.User(), nil
		}
		token = next
	}
	t.Fatal("exchange did not end")
	return "", nil
}

func TestExchanges(t *testing.T) {
	srv, err := NewServer(Mechanisms, testStore(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		client ksasl.Mechanism
		ok     bool
	}{
		{"plain wrong password", kplain.Auth{User: "alice", Pass: "nope"}.AsMechanism(), false},
		{"plain unknown user", kplain.Auth{User: "carol", Pass: "alice-secret"}.AsMechanism(), false},
		{"plain other authzid", kplain.Auth{Zid: "bob", User: "alice", Pass: "alice-secret"}.AsMechanism(), false},
		{"scram256 wrong password", kscram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism(), false},
		{"scram512 wrong password", kscram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism(), false},
		{"scram512 unknown user", kscram.Auth{User: "carol", Pass: "x"}.AsSha512Mechanism(), false},
		{"scram512 user without that mechanism", kscram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism(), false},
		{"plain", kplain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), true},
		{"plain sha256-only user", kplain.Auth{User: "bob", Pass: "bob-secret"}.AsMechanism(), true},
		{"scram256", kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(), true},
		{"scram512", kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user, err := run(t, srv, tc.client)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if user == "" {
					t.Fatal("no user after success")
				}
				return
			}
			if !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("want ErrAuthenticationFailed, got user %q err %v", user, err)
			}
		})
	}
	if got := srv.Counts(ScramSHA512).Failed.Load(); got != 3 {
		t.Errorf("SCRAM-SHA-512 failures counted %d, want 3", got)
	}
	if got := srv.Counts(Plain).Succeeded.Load(); got != 2 {
		t.Errorf("PLAIN successes counted %d, want 2", got)
	}
}

func TestDisabledMechanism(t *testing.T) {
	srv, err := NewServer([]Mechanism{ScramSHA512}, testStore(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"PLAIN", "SCRAM-SHA-256", "scram-sha-512", "GSSAPI"} {
		if _, _, ok := srv.Start(name); ok {
			t.Errorf("%s started", name)
		}
	}
}

func TestCredentialFromSaltedMatchesPassword(t *testing.T) {
	salt := []byte("0123456789")
	for _, m := range ScramMechanisms {
		salted, err := SaltedPassword(m, "pw", salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		c, err := CredentialFromSalted(m, salted, salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Matches(m, "pw") || c.Matches(m, "pw2") {
			t.Fatalf("%s: Matches wrong", m)
		}
	}
}

// TestScramLibrdkafkaNonce: librdkafka (kcat) sends its client nonce twice
// in client-final ("r=" + cnonce + the server's nonce, which starts with
// cnonce); Kafka accepts a nonce that ends with the server's, and so must
// we. A nonce without the server's part at its end is refused.
func TestScramLibrdkafkaNonce(t *testing.T) {
	lookup := testStore(t)
	srv, err := NewServer(Mechanisms, lookup)
	if err != nil {
		t.Fatal(err)
	}
	login := func(t *testing.T, nonceOf func(cnonce, snonce string) string) error {
		ex, m, _ := srv.Start("SCRAM-SHA-256")
		const cnonce = "`=>]0Xkz~]?]]El^uhz"
		first := "n,,n=alice,r=" + cnonce
		answer, _, err := ex.Step([]byte(first))
		if err != nil {
			t.Fatal(err)
		}
		snonce := strings.TrimPrefix(strings.Split(string(answer), ",")[0], "r=")
		cred, _ := lookup("alice", m)
		salted, _ := SaltedPassword(m, "alice-secret", cred.Salt, cred.Iterations)
		h := hashFor(m)
		clientKey := hmacOf(h, salted, "Client Key")
		withoutProof := "c=biws,r=" + nonceOf(cnonce, snonce)
		sig := hmacOf(h, cred.StoredKey, "n=alice,r="+cnonce+","+string(answer)+","+withoutProof)
		for i := range sig {
			sig[i] ^= clientKey[i]
		}
		_, done, err := ex.Step([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(sig)))
		if err == nil && !done {
			t.Fatal("not done")
		}
		return err
	}
	if err := login(t, func(_, s string) string { return s[:len(s)-1] }); err == nil {
		t.Error("a nonce without the server's last character was accepted")
	}
	if err := login(t, func(c, s string) string { return s + c }); err == nil {
		t.Error("a nonce not ending with the server's was accepted")
	}
	if err := login(t, func(_, s string) string { return s }); err != nil {
		t.Errorf("RFC 5802 nonce refused: %v", err)
	}
	if err := login(t, func(c, s string) string { return c + s }); err != nil {
		t.Errorf("librdkafka's nonce refused: %v", err)
	}
}
