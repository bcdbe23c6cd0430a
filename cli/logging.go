package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

// newLogger builds the process logger from --log-level and --log-json:
// hclog to stderr.
func newLogger(c *cli.Context) (hclog.Logger, error) {
	name := lineageString(c, "log-level")
	level := hclog.LevelFromString(name)
	if level == hclog.NoLevel {
		return nil, fmt.Errorf("unknown --log-level %q: use trace, debug, info, warn or error", name)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "skein",
		Level:      level,
		Output:     os.Stderr,
		JSONFormat: lineageBool(c, "log-json"),
	}), nil
}

// kgoLogger adapts hclog to franz-go's logger so client tools show what
// the client does at debug level.
type kgoLogger struct{ log hclog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	switch {
	case l.log.IsTrace(), l.log.IsDebug():
		return kgo.LogLevelDebug
	case l.log.IsInfo():
		// The client's info lines (connections, metadata) are noise for
		// a command line tool; show them only from debug on.
		return kgo.LogLevelWarn
	case l.log.IsWarn():
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		l.log.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		l.log.Warn(msg, keyvals...)
	case kgo.LogLevelInfo:
		l.log.Info(msg, keyvals...)
	default:
		l.log.Debug(msg, keyvals...)
	}
}

// isTerminal reports whether f is a character device (a terminal), without
// pulling in a terminal library.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && !strings.EqualFold(os.Getenv("TERM"), "dumb")
}
