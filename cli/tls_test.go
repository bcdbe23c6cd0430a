package cli

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestCommandConfigFlag: every command that connects to the cluster
// (--bootstrap-server or --bootstrap-controller) takes --command-config,
// and the nodes take the TLS flags.
func TestCommandConfigFlag(t *testing.T) {
	connecting := 0
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			names := map[string]bool{}
			for _, f := range cmd.Flags {
				for _, n := range f.Names() {
					names[n] = true
				}
			}
			if names["bootstrap-server"] || names["bootstrap-controller"] {
				connecting++
				if !names["command-config"] {
					t.Errorf("%s %s connects but has no --command-config", path, cmd.Name)
				}
			}
			if path == "skein" && (cmd.Name == "broker" || cmd.Name == "controller") {
				for _, f := range []string{"tls-cert", "tls-key", "tls-client-ca", "tls-ca", "listener-protocol"} {
					if !names[f] {
						t.Errorf("skein %s has no --%s", cmd.Name, f)
					}
				}
			}
			walk(path+" "+cmd.Name, cmd.Subcommands)
		}
	}
	walk("skein", App().Commands)
	if connecting < 10 {
		t.Fatalf("only %d connecting commands found", connecting)
	}
}

// TestSplitPrincipals: --super-users splits on ';' (Kafka's super.users),
// keeping a TLS principal's commas, and on ',' between whole principals.
func TestSplitPrincipals(t *testing.T) {
	for in, want := range map[string][]string{
		"User:CN=a,O=Skein;User:CN=b,O=Skein": {"User:CN=a,O=Skein", "User:CN=b,O=Skein"},
		"User:admin,User:broker":              {"User:admin", "User:broker"},
		"User:admin; User:CN=b,OU=x,O=y;":     {"User:admin", "User:CN=b,OU=x,O=y"},
		"":                                    nil,
	} {
		if got := splitPrincipals(in); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("splitPrincipals(%q) = %q, want %q", in, got, want)
		}
	}
}
