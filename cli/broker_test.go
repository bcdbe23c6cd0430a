package cli

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/dataplane"
)

// brokerConfigFrom runs the broker command's flag parsing on args and
// returns what brokerConfig makes of them.
func brokerConfigFrom(t *testing.T, args ...string) (dataplane.Config, error) {
	t.Helper()
	cmd := brokerCommand()
	var cfg dataplane.Config
	var cfgErr error
	cmd.Action = func(c *cli.Context) error {
		cfg, cfgErr = brokerConfig(c, dataplane.DefaultConfig())
		return nil
	}
	app := &cli.App{Name: "skein", Commands: []*cli.Command{cmd}}
	if err := app.RunContext(context.Background(), append([]string{"skein", "broker"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cfg, cfgErr
}

func TestBrokerRecoveryThreadsFlag(t *testing.T) {
	base := []string{"--node-id", "101", "--data-dir", t.TempDir(), "--controllers", "127.0.0.1:9093"}
	cfg, err := brokerConfigFrom(t, base...)
	if err != nil || cfg.RecoveryThreads != 0 {
		t.Fatalf("default: %d, %v (want 0: storage's default)", cfg.RecoveryThreads, err)
	}
	cfg, err = brokerConfigFrom(t, append(base, "--recovery-threads", "5")...)
	if err != nil || cfg.RecoveryThreads != 5 {
		t.Fatalf("--recovery-threads 5: %d, %v", cfg.RecoveryThreads, err)
	}
	t.Setenv("SKEIN_RECOVERY_THREADS", "7")
	cfg, err = brokerConfigFrom(t, base...)
	if err != nil || cfg.RecoveryThreads != 7 {
		t.Fatalf("SKEIN_RECOVERY_THREADS=7: %d, %v", cfg.RecoveryThreads, err)
	}
	if _, err = brokerConfigFrom(t, append(base, "--recovery-threads", "0")...); err == nil {
		t.Fatal("--recovery-threads 0 accepted")
	}
}

func TestBrokerListenersFlags(t *testing.T) {
	base := []string{"--node-id", "101", "--data-dir", t.TempDir(), "--controllers", "127.0.0.1:9093"}
	cfg, err := brokerConfigFrom(t, append(base,
		"--listeners", "internal://0.0.0.0:9092, EXTERNAL://[::]:19092,LOCAL://:9094",
		"--advertised-listeners", "INTERNAL://broker-1:9092,external://127.0.0.1:19092",
		"--inter-broker-listener-name", "internal")...)
	if err != nil {
		t.Fatal(err)
	}
	want := []dataplane.Listener{
		{Name: "INTERNAL", Addr: "0.0.0.0:9092", Advertised: "broker-1:9092"},
		{Name: "EXTERNAL", Addr: "[::]:19092", Advertised: "127.0.0.1:19092"},
		{Name: "LOCAL", Addr: ":9094"},
	}
	if !slices.Equal(cfg.Listeners, want) || cfg.InterBrokerListenerName != "INTERNAL" {
		t.Fatalf("listeners %+v inter-broker %q, want %+v INTERNAL", cfg.Listeners, cfg.InterBrokerListenerName, want)
	}

	// Environment twins.
	t.Setenv("SKEIN_LISTENERS", "A://127.0.0.1:1,B://127.0.0.1:2")
	t.Setenv("SKEIN_ADVERTISED_LISTENERS", "B://b.example:2")
	t.Setenv("SKEIN_INTER_BROKER_LISTENER_NAME", "B")
	cfg, err = brokerConfigFrom(t, base...)
	if err != nil || len(cfg.Listeners) != 2 || cfg.Listeners[1].Advertised != "b.example:2" || cfg.InterBrokerListenerName != "B" {
		t.Fatalf("from the environment: %+v %q %v", cfg.Listeners, cfg.InterBrokerListenerName, err)
	}
	os.Unsetenv("SKEIN_LISTENERS")
	os.Unsetenv("SKEIN_ADVERTISED_LISTENERS")
	os.Unsetenv("SKEIN_INTER_BROKER_LISTENER_NAME")

	// --listen alone keeps working: no named listeners.
	cfg, err = brokerConfigFrom(t, append(base, "--listen", "127.0.0.1:9092", "--advertised-listener", "h:9092")...)
	if err != nil || cfg.Listeners != nil || cfg.Listen != "127.0.0.1:9092" || cfg.AdvertisedListener != "h:9092" {
		t.Fatalf("--listen: %+v %v", cfg, err)
	}

	for _, bad := range [][]string{
		{"--listeners", "127.0.0.1:9092"},
		{"--listeners", "A://nowhere"},
		{"--listeners", "A://:1,a://:2"},
		{"--listeners", " , "},
		{"--listeners", "A://:1", "--listen", "127.0.0.1:9092"},
		{"--listeners", "A://:1", "--advertised-listener", "h:1"},
		{"--listeners", "A://:1", "--advertised-listeners", "B://h:1"},
		{"--listeners", "A://:1", "--advertised-listeners", "A://h:1,A://h:2"},
		{"--advertised-listeners", "PLAINTEXT://h:1"},
	} {
		if _, err := brokerConfigFrom(t, append(base, bad...)...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBrokerReplicaFetchWaitMaxFlag(t *testing.T) {
	base := []string{"--node-id", "101", "--data-dir", t.TempDir(), "--controllers", "127.0.0.1:9093"}
	cfg, err := brokerConfigFrom(t, base...)
	if err != nil || cfg.ReplicaFetchWaitMax != 500*time.Millisecond {
		t.Fatalf("default: %v, %v (want Kafka's 500ms)", cfg.ReplicaFetchWaitMax, err)
	}
	cfg, err = brokerConfigFrom(t, append(base, "--replica-fetch-wait-max", "20s")...)
	if err != nil || cfg.ReplicaFetchWaitMax != 20*time.Second {
		t.Fatalf("--replica-fetch-wait-max 20s: %v, %v", cfg.ReplicaFetchWaitMax, err)
	}
	t.Setenv("SKEIN_REPLICA_FETCH_WAIT_MAX", "250ms")
	cfg, err = brokerConfigFrom(t, base...)
	if err != nil || cfg.ReplicaFetchWaitMax != 250*time.Millisecond {
		t.Fatalf("SKEIN_REPLICA_FETCH_WAIT_MAX=250ms: %v, %v", cfg.ReplicaFetchWaitMax, err)
	}
	if _, err = brokerConfigFrom(t, append(base, "--replica-fetch-wait-max", "0s")...); err == nil {
		t.Fatal("--replica-fetch-wait-max 0s accepted")
	}
}

func TestBrokerReplicaFetchLingerFlag(t *testing.T) {
	base := []string{"--node-id", "101", "--data-dir", t.TempDir(), "--controllers", "127.0.0.1:9093"}
	cfg, err := brokerConfigFrom(t, base...)
	if err != nil || cfg.ReplicaFetchLinger != dataplane.DefaultReplicaFetchLinger {
		t.Fatalf("default: %v, %v", cfg.ReplicaFetchLinger, err)
	}
	cfg, err = brokerConfigFrom(t, append(base, "--replica-fetch-linger", "0")...)
	if err != nil || cfg.ReplicaFetchLinger != 0 {
		t.Fatalf("--replica-fetch-linger 0: %v, %v", cfg.ReplicaFetchLinger, err)
	}
	t.Setenv("SKEIN_REPLICA_FETCH_LINGER", "2ms")
	cfg, err = brokerConfigFrom(t, base...)
	if err != nil || cfg.ReplicaFetchLinger != 2*time.Millisecond {
		t.Fatalf("SKEIN_REPLICA_FETCH_LINGER=2ms: %v, %v", cfg.ReplicaFetchLinger, err)
	}
	for _, bad := range []string{"-1ms", "101ms"} {
		if _, err = brokerConfigFrom(t, append(base, "--replica-fetch-linger", bad)...); err == nil {
			t.Errorf("--replica-fetch-linger %s accepted", bad)
		}
	}
}
