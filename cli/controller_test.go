package cli

import (
	"context"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/controller"
)

// controllerConfigFrom runs the controller command's flag parsing on args
// and returns what controllerConfig makes of them.
func controllerConfigFrom(t *testing.T, args ...string) (controller.Config, error) {
	t.Helper()
	cmd := controllerCommand()
	var cfg controller.Config
	var cfgErr error
	cmd.Action = func(c *cli.Context) error {
		cfg, cfgErr = controllerConfig(c, controller.DefaultConfig())
		return nil
	}
	app := &cli.App{Name: "skein", Commands: []*cli.Command{cmd}}
	if err := app.RunContext(context.Background(), append([]string{"skein", "controller"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cfg, cfgErr
}

func TestControllerRaftHeartbeatTimeoutFlag(t *testing.T) {
	def := controller.DefaultConfig().RaftHeartbeatTimeout
	cfg, err := controllerConfigFrom(t)
	if err != nil || cfg.RaftHeartbeatTimeout != def {
		t.Fatalf("default: %v, %v (want %v)", cfg.RaftHeartbeatTimeout, err, def)
	}
	cfg, err = controllerConfigFrom(t, "--raft-heartbeat-timeout", "150ms")
	if err != nil || cfg.RaftHeartbeatTimeout != 150*time.Millisecond {
		t.Fatalf("--raft-heartbeat-timeout 150ms: %v, %v", cfg.RaftHeartbeatTimeout, err)
	}
	t.Setenv("SKEIN_RAFT_HEARTBEAT_TIMEOUT", "300ms")
	cfg, err = controllerConfigFrom(t)
	if err != nil || cfg.RaftHeartbeatTimeout != 300*time.Millisecond {
		t.Fatalf("SKEIN_RAFT_HEARTBEAT_TIMEOUT=300ms: %v, %v", cfg.RaftHeartbeatTimeout, err)
	}
}
