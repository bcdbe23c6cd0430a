package cli

import (
	"context"
	"testing"

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
