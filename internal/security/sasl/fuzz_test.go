package sasl

import (
	"errors"
	"testing"
)

// FuzzSASLExchange feeds arbitrary client tokens to each mechanism's
// exchange. Invariants: no panic; every refusal is ErrAuthenticationFailed;
// an exchange that refused or finished refuses whatever comes next; and no
// token sequence authenticates without the password: PLAIN succeeds only
// on a token naming a user with its password, SCRAM never (the fuzzer
// cannot compute a proof for the random nonce the server adds).
func FuzzSASLExchange(f *testing.F) {
	f.Add(byte(0), []byte("\x00alice\x00alice-secret"), []byte{})
	f.Add(byte(0), []byte("alice\x00alice\x00nope"), []byte{})
	f.Add(byte(1), []byte("n,,n=alice,r=abcdef"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add(byte(2), []byte("n,a=bob,n=alice,r=x"), []byte("c=eSws,r=x,p=dGVzdA=="))
	f.Add(byte(2), []byte("y,,n=al=2Cice,r=x,m=ext"), []byte("garbage"))
	lookup := testStore(f)
	srv, err := NewServer(Mechanisms, lookup)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which byte, first, second []byte) {
		m := Mechanisms[int(which)%len(Mechanisms)]
		ex, _, ok := srv.Start(string(m))
		if !ok {
			t.Fatalf("%s not enabled", m)
		}
		ended := false
		for _, tok := range [][]byte{first, second, first} {
			_, done, err := ex.Step(tok)
			if ended {
				if err == nil {
					t.Fatalf("%s: a step after the end was accepted", m)
				}
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrAuthenticationFailed) {
					t.Fatalf("%s: refusal %v is not ErrAuthenticationFailed", m, err)
				}
				ended = true
				continue
			}
			if done {
				ended = true
				_, user, pass, _ := parsePlain(tok)
				good := m == Plain && (user == "alice" && pass == "alice-secret" || user == "bob" && pass == "bob-secret")
				if !good {
					t.Fatalf("%s authenticated %q with tokens %q, %q", m, ex.User(), first, second)
				}
			}
		}
	})
}
