package controller

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/security/sasl"
)

func TestParseBootstrapScram(t *testing.T) {
	good := []struct {
		in         string
		mech       sasl.Mechanism
		user, pass string
		iterations int32
	}{
		{"SCRAM-SHA-512=[name=admin,password=admin-secret]", sasl.ScramSHA512, "admin", "admin-secret", 4096},
		{"scram-sha-256=[name=alice,password=\"a,b]c\",iterations=8192]", sasl.ScramSHA256, "alice", "a,b]c", 8192},
	}
	for _, g := range good {
		b, err := ParseBootstrapScram(g.in)
		if err != nil {
			t.Errorf("%s: %v", g.in, err)
			continue
		}
		if b.Mechanism != g.mech || b.User != g.user || b.Password != g.pass || b.Iterations != g.iterations {
			t.Errorf("%s: %+v", g.in, b)
		}
	}
	for _, bad := range []string{
		"", "PLAIN=[name=a,password=b]", "SCRAM-SHA-512=name=a,password=b", "SCRAM-SHA-512=[name=a]",
		"SCRAM-SHA-512=[password=b]", "SCRAM-SHA-512=[name=a,password=b,iterations=100]",
		"SCRAM-SHA-512=[name=a,password=b,salt=x]", "SCRAM-SHA-512=[name=a,name=b,password=c]",
		`SCRAM-SHA-512=[name=a,password="b]`,
	} {
		if _, err := ParseBootstrapScram(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestPlanScramAlterations(t *testing.T) {
	img := image.New()
	img.ScramUsers = map[string]map[int8]image.ScramCredential{"bob": {2: {Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("k"), ServerKey: []byte("k")}}}
	r := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := func(name string, mech int8, iterations int32) {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iterations, []byte("salt"), []byte("salted-password")
		r.Upsertions = append(r.Upsertions, u)
	}
	del := func(name string, mech int8) {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		r.Deletions = append(r.Deletions, d)
	}
	del("bob", 2)         // ok
	del("carol", 1)       // RESOURCE_NOT_FOUND
	up("alice", 1, 4096)  // ok
	up("alice", 2, 4096)  // ok: another mechanism
	up("dave", 3, 4096)   // UNSUPPORTED_SASL_MECHANISM
	up("erin", 2, 100)    // UNACCEPTABLE_CREDENTIAL
	up("frank", 2, 20000) // UNACCEPTABLE_CREDENTIAL
	up("", 2, 4096)       // UNACCEPTABLE_CREDENTIAL
	up("gina", 1, 4096)   // DUPLICATE_RESOURCE with the next
	up("gina", 1, 4096)   //
	up("bob", 1, 4096)    // ok: bob's deletion is of mechanism 2
	p := planScramAlterations(img, r)
	want := map[string]*kerr.Error{
		"bob": nil, "carol": kerr.ResourceNotFound, "alice": nil, "dave": kerr.UnsupportedSaslMechanism,
		"erin": kerr.UnacceptableCredential, "frank": kerr.UnacceptableCredential, "": kerr.UnacceptableCredential,
		"gina": kerr.DuplicateResource,
	}
	if got := strings.Join(p.users, ","); got != "bob,carol,alice,dave,erin,frank,,gina" {
		t.Errorf("users in order %q", got)
	}
	for user, code := range want {
		err := p.errs[user]
		gotCode, _ := kafkaError(err)
		wantCode := int16(0)
		if code != nil {
			wantCode = code.Code
		}
		if gotCode != wantCode {
			t.Errorf("user %q: error %v, want %v", user, err, code)
		}
	}
	if len(p.recs["alice"]) != 2 || len(p.recs["bob"]) != 2 {
		t.Errorf("alice %d records, bob %d; want 2 each", len(p.recs["alice"]), len(p.recs["bob"]))
	}
	x := p.recs["alice"][0].UserScramCredential
	want256, _ := sasl.CredentialFromSalted(sasl.ScramSHA256, []byte("salted-password"), []byte("salt"), 4096)
	if x == nil || string(x.StoredKey) != string(want256.StoredKey) || string(x.ServerKey) != string(want256.ServerKey) {
		t.Errorf("alice's SCRAM-SHA-256 record %+v does not hold the derived keys", x)
	}
}
