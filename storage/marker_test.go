package storage_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCleanShutdownMarkerEpoch: Close records the broker epoch set with
// SetBrokerEpoch in the clean-shutdown marker ({"version":0,"brokerEpoch":N},
// Kafka's format) and the next OpenManager reads it back; a marker without
// an epoch (the older, empty format) is a clean shutdown with no known
// epoch (-1); no marker is an unclean one.
func TestCleanShutdownMarkerEpoch(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, ".kafka_cleanshutdown")

	m := openManager(t, dir)
	if m.CleanShutdown() || m.PreviousBrokerEpoch() != -1 {
		t.Fatalf("fresh dir: clean %v epoch %d", m.CleanShutdown(), m.PreviousBrokerEpoch())
	}
	m.SetBrokerEpoch(42)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != `{"version":0,"brokerEpoch":42}` {
		t.Fatalf("marker %q (%v)", b, err)
	}
	m = openManager(t, dir)
	if !m.CleanShutdown() || m.PreviousBrokerEpoch() != 42 {
		t.Fatalf("after a clean close: clean %v epoch %d, want true 42", m.CleanShutdown(), m.PreviousBrokerEpoch())
	}
	if err := m.Close(); err != nil { // no epoch set this time
		t.Fatal(err)
	}
	m = openManager(t, dir)
	if !m.CleanShutdown() || m.PreviousBrokerEpoch() != -1 {
		t.Fatalf("closed without an epoch: clean %v epoch %d, want true -1", m.CleanShutdown(), m.PreviousBrokerEpoch())
	}
	m.Close()

	if err := os.WriteFile(marker, nil, 0o644); err != nil { // the older format
		t.Fatal(err)
	}
	m = openManager(t, dir)
	if !m.CleanShutdown() || m.PreviousBrokerEpoch() != -1 {
		t.Fatalf("empty marker: clean %v epoch %d, want true -1", m.CleanShutdown(), m.PreviousBrokerEpoch())
	}
	m.Close()

	os.Remove(marker) // a crash leaves none
	m = openManager(t, dir)
	defer m.Close()
	if m.CleanShutdown() || m.PreviousBrokerEpoch() != -1 {
		t.Fatalf("no marker: clean %v epoch %d, want false -1", m.CleanShutdown(), m.PreviousBrokerEpoch())
	}
}
