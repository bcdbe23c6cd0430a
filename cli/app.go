// Package cli maps the skein command line (urfave/cli/v2) onto the
// components' Config structs. It holds no defaults of its own.
package cli

import "github.com/urfave/cli/v2"

// App returns the skein command.
func App() *cli.App {
	return &cli.App{Name: "skein", Usage: "a Kafka-compatible replicated commit log"}
}
