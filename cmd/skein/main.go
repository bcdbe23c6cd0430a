// Command skein is the Skein broker, controller and admin CLI.
package main

import (
	"fmt"
	"os"

	"github.com/skein-io/skein/cli"
)

func main() {
	if err := cli.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
