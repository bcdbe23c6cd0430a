package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/internal/console"
)

// TestWriteOverviewColors: with colour, a fenced broker and an offline
// topic are red and an under-replicated topic yellow, each a whole line,
// while the columns stay aligned as without colour; healthy rows carry no
// sequence at all.
func TestWriteOverviewColors(t *testing.T) {
	ov := &overview{
		At:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ClusterID: "c1",
		Brokers: []brokerRow{
			{ID: 101, Address: "h:1", Registered: true, Leaders: 2, Replicas: 3},
			{ID: 102, Address: "h:2", Registered: true, Fenced: true, Replicas: 3},
			{ID: 103, Replicas: 1},
		},
		Quorum: &console.Quorum{LeaderID: 1, Term: 4, HighWatermark: 10, Voters: []console.Voter{
			{ID: 1, Role: "leader", LogEndOffset: 10}, {ID: 2, Role: "follower", LogEndOffset: 7, Lag: 3, LastContact: time.Second},
		}},
		Topics: []topicRow{
			{Name: "ok", Partitions: 1, ReplicationFactor: 1},
			{Name: "urp", Partitions: 3, ReplicationFactor: 3, UnderReplicated: 2},
			{Name: "off", Partitions: 1, ReplicationFactor: 1, Offline: 1},
		},
	}
	var plain, colored bytes.Buffer
	if err := writeOverview(&plain, ov, false); err != nil {
		t.Fatal(err)
	}
	if err := writeOverview(&colored, ov, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Fatalf("escape sequences without colour:\n%q", plain.String())
	}
	stripped := colored.String()
	for _, seq := range []string{ansiRed, ansiYellow, ansiBold, ansiReset} {
		stripped = strings.ReplaceAll(stripped, seq, "")
	}
	if stripped != plain.String() {
		t.Fatalf("coloured frame differs from the plain one once stripped:\n%s\n---\n%s", stripped, plain.String())
	}
	want := map[string]string{ // line prefix -> colour
		"101 ": "", "102 ": ansiRed, "103 ": ansiRed,
		"ok ": "", "urp ": ansiYellow, "off ": ansiRed,
	}
	lines := strings.Split(colored.String(), "\n")
	for prefix, c := range want {
		found := false
		for _, l := range lines {
			body := strings.TrimPrefix(l, c)
			if c != "" && !strings.HasPrefix(l, c) {
				continue
			}
			if strings.HasPrefix(body, prefix) {
				found = true
				if c == "" && strings.Contains(l, "\x1b") {
					t.Errorf("line %q: want no colour", l)
				}
				if c != "" && !strings.HasSuffix(l, ansiReset) {
					t.Errorf("line %q: colour not reset at its end", l)
				}
			}
		}
		if !found {
			t.Errorf("no line %q in colour %q:\n%s", prefix, c, colored.String())
		}
	}
	for _, s := range []string{"Brokers: 3, 1 alive", "unknown", "fenced", "leader 1, term 4", "1s ago", "under-replicated 2, offline 1"} {
		if !strings.Contains(plain.String(), s) {
			t.Errorf("frame lacks %q:\n%s", s, plain.String())
		}
	}
}
