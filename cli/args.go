package cli

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves every flag of a command line in front of the
// positional arguments of the command it belongs to.
//
// urfave/cli v2 stops parsing flags at the first positional argument, yet
// the skein contract puts flags after names:
// `skein topic create t --partitions 3`. A flag that takes a value takes
// the next token with it; everything after "--" stays positional.
// Unknown flags are kept (urfave reports them).
func interspersed(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := append(make([]string, 0, len(args)), args[0])
	flags, commands := app.Flags, app.Commands
	var pending, positional []string
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		arg := rest[i]
		if arg == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if len(arg) > 1 && arg[0] == '-' {
			pending = append(pending, arg)
			if takesValue(flags, arg) && i+1 < len(rest) {
				pending = append(pending, rest[i+1])
				i++
			}
			continue
		}
		if len(positional) == 0 {
			if cmd := findCommand(commands, arg); cmd != nil {
				out = append(out, pending...)
				out = append(out, arg)
				pending = nil
				flags, commands = cmd.Flags, cmd.Subcommands
				continue
			}
		}
		positional = append(positional, arg)
	}
	out = append(out, pending...)
	return append(out, positional...)
}

// takesValue reports whether arg ("--name", "-name" or "--name=v") is a
// known flag that consumes the next token.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			_, isBool := f.(*cli.BoolFlag)
			return !isBool
		}
	}
	return false
}

func findCommand(commands []*cli.Command, name string) *cli.Command {
	for _, cmd := range commands {
		if cmd.Name == name {
			return cmd
		}
		for _, alias := range cmd.Aliases {
			if alias == name {
				return cmd
			}
		}
	}
	return nil
}
