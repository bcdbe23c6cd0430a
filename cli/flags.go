package cli

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// envPrefix is the prefix of every flag's environment-variable twin.
const envPrefix = "SKEIN_"

// envName is the environment variable twin of a flag: --node-id is
// SKEIN_NODE_ID. Every flag of every command has one (see flags_test.go).
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// The constructors below are the only way flags are made in this package,
// so no flag can miss its environment twin.

func stringFlag(name, usage, value string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

func requiredStringFlag(name, usage string) *cli.StringFlag {
	f := stringFlag(name, usage+" (required)", "")
	f.Required = true
	return f
}

// stringSliceFlag is a repeatable flag. Values are never split on commas
// (the App disables the separator) because topic configs may hold commas
// (cleanup.policy=compact,delete).
func stringSliceFlag(name, usage string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Usage: usage, EnvVars: []string{envName(name)}}
}

func intFlag(name, usage string, value int) *cli.IntFlag {
	return &cli.IntFlag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

func requiredIntFlag(name, usage string) *cli.IntFlag {
	f := intFlag(name, usage+" (required)", 0)
	f.Required = true
	f.DefaultText = "none"
	return f
}

func int64Flag(name, usage string, value int64) *cli.Int64Flag {
	return &cli.Int64Flag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

func float64Flag(name, usage string, value float64) *cli.Float64Flag {
	return &cli.Float64Flag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

func boolFlag(name, usage string, value bool) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

func durationFlag(name, usage string, value time.Duration) *cli.DurationFlag {
	return &cli.DurationFlag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

// fromComponent marks a flag whose default belongs to a component: the
// flag overrides the component's DefaultConfig() value only when it is set,
// and help says whose default applies.
func fromComponent(owner string, f cli.Flag) cli.Flag {
	text := "the " + owner + "'s"
	switch f := f.(type) {
	case *cli.StringFlag:
		f.DefaultText = text
	case *cli.IntFlag:
		f.DefaultText = text
	case *cli.DurationFlag:
		f.DefaultText = text
	case *cli.BoolFlag:
		f.DefaultText = text
	}
	return f
}

// Flags shared by several commands.

const defaultBootstrapServer = "127.0.0.1:9092"

func bootstrapServerFlag() cli.Flag {
	return stringFlag("bootstrap-server", "Kafka listener(s) of the cluster, host:port[,host:port...]", defaultBootstrapServer)
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("log-level", "log level: trace, debug, info, warn, error", "info"),
		boolFlag("log-json", "log as JSON lines", false),
	}
}

func acksFlag() cli.Flag {
	return stringFlag("acks", "acknowledgements to wait for: all (-1), leader (1) or none (0)", "all")
}

// withCommon appends the flags every command takes.
// A command that connects to the cluster (it has --bootstrap-server or
// --bootstrap-controller) also gets --command-config.
// adminFlags are withCommon's flags of a command that talks to a cluster
// with one request at a time: flags, then --bootstrap-server and --timeout.
func adminFlags(flags ...cli.Flag) []cli.Flag {
	return withCommon(append(flags,
		bootstrapServerFlag(),
		durationFlag("timeout", "give up on the request after this long", 30*time.Second),
	)...)
}

func withCommon(flags ...cli.Flag) []cli.Flag {
	for _, f := range flags {
		if name := f.Names()[0]; name == "bootstrap-server" || name == "bootstrap-controller" {
			flags = append(flags, commandConfigFlag())
			break
		}
	}
	return append(flags, logFlags()...)
}

// int32Value reads an int flag that must fit an int32 (node ids, partitions).
func int32Value(c *cli.Context, name string) (int32, error) {
	v := c.Int(name)
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("--%s %d is out of range", name, v)
	}
	return int32(v), nil
}

// int16Value reads an int flag that must fit an int16 (replication factors).
func int16Value(c *cli.Context, name string) (int16, error) {
	v := c.Int(name)
	if v < math.MinInt16 || v > math.MaxInt16 {
		return 0, fmt.Errorf("--%s %d is out of range", name, v)
	}
	return int16(v), nil
}

// splitList splits "a,b , c" into [a b c], dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// lineageString returns the value of a flag defined both on the App and on
// the command, from the innermost context where it was set (so
// `skein --log-level debug broker` and `skein broker --log-level debug`
// both work), else from the innermost context that defines it.
func lineageString(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.String(name)
		}
	}
	return c.String(name)
}

func lineageBool(c *cli.Context, name string) bool {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.Bool(name)
		}
	}
	return c.Bool(name)
}
