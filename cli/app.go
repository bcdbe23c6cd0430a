// Package cli maps the skein command line (urfave/cli/v2) onto the
// components' Config structs. It holds no defaults of its own: a flag that
// configures a component overrides the component's DefaultConfig() value
// only when it is given (on the command line or through its SKEIN_*
// environment twin).
//
// One file per command group: controller.go, broker.go, dev.go, topic.go,
// leader.go, reassign.go (with reassign_progress.go; plans in
// internal/reassign), replicas.go, produce.go, consume.go, group.go, bench_produce.go, bench_consume.go,
// verify.go (the checks in internal/workload), top.go (skein top); flags.go
// builds every flag (each with its environment twin), table.go formats
// topic tables, client.go dials the cluster.
package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// App returns the skein command.
func App() *cli.App {
	return &cli.App{
		Name:  "skein",
		Usage: "a Kafka-compatible replicated commit log",
		// Flags after positional arguments are handled by Run; values of
		// repeatable flags are never split on commas.
		DisableSliceFlagSeparator: true,
		Flags:                     logFlags(),
		Commands: []*cli.Command{
			controllerCommand(),
			brokerCommand(),
			devCommand(),
			topicCommand(),
			clusterCommand(),
			topCommand(),
			leaderCommand(),
			reassignCommand(),
			replicasCommand(),
			produceCommand(),
			consumeCommand(),
			groupCommand(),
			transactionsCommand(),
			aclCommand(),
			benchCommand(),
			verifyCommand(),
			healthCommand(),
			userCommand(),
		},
	}
}

// Run runs the skein command line args (args[0] is the program name) until
// it finishes or ctx is cancelled. Flags may follow positional arguments.
func Run(ctx context.Context, args []string) error {
	app := App()
	return app.RunContext(ctx, interspersed(app, args))
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}
