// Command skein is the Skein broker, controller and admin CLI.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/skein-io/skein/cli"
)

func main() {
	if err := cli.Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
