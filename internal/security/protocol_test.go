package security

import "testing"

func TestProtocolMap(t *testing.T) {
	m, err := ParseProtocolMap("internal:ssl, EXTERNAL:SASL_SSL")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		def  Protocol
		want Protocol
	}{
		{"INTERNAL", "", SSL},
		{"external", Plaintext, SASLSSL},
		{"SASL_PLAINTEXT", SSL, SASLPlaintext}, // a protocol's name is that protocol
		{"CLIENTS", "", Plaintext},
		{"CLIENTS", SASLSSL, SASLSSL},
	}
	for _, c := range cases {
		if got := m.For(c.name, c.def); got != c.want {
			t.Errorf("For(%q, %q) = %s, want %s", c.name, c.def, got, c.want)
		}
	}
	for _, bad := range []string{"A", "A:TLS", ":SSL", "A:SSL,A:PLAINTEXT"} {
		if _, err := ParseProtocolMap(bad); err == nil {
			t.Errorf("ParseProtocolMap(%q) accepted", bad)
		}
	}
	if !SASLSSL.TLS() || !SASLSSL.SASL() || Plaintext.TLS() || SSL.SASL() || !SASLPlaintext.SASL() {
		t.Fatal("TLS/SASL predicates wrong")
	}
}
