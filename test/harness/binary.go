package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is the skein binary of this test binary run, built at most once.
var binary struct {
	once sync.Once
	path string
	dir  string // temporary build directory, removed by Main
	err  error
}

// Binary returns the path of the skein binary: $SKEIN_BIN when set, else
// ./cmd/skein of the enclosing module built once per test binary run into a
// temporary directory (removed by Main). It fails the test if the build
// fails.
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() { binary.path, binary.dir, binary.err = buildBinary() })
	if binary.err != nil {
		t.Fatalf("skein binary: %v", binary.err)
	}
	return binary.path
}

// Main runs the tests of a package that uses the harness and removes the
// binary it built. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
	return code
}

func buildBinary() (path, dir string, err error) {
	if p := os.Getenv("SKEIN_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", "", fmt.Errorf("$SKEIN_BIN: %w", err)
		}
		return abs, "", nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "skein-harness-bin-")
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "skein")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/skein")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build ./cmd/skein in %s: %w\n%s", root, err, out)
	}
	return path, dir, nil
}

// moduleRoot walks up from the working directory (a test runs in its
// package directory) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; set $SKEIN_BIN")
		}
		dir = parent
	}
}

// SupportsFlag reports whether `skein <command> --help` lists --flag: a
// test can use a flag the binary under test may predate, and say so when
// it cannot. The answer is kept for the rest of the test binary run (the
// binary does not change), so only the first question runs the binary.
func SupportsFlag(t testing.TB, command, flag string) bool {
	t.Helper()
	supported.Lock()
	defer supported.Unlock()
	if help, ok := supported.help[command]; ok {
		return strings.Contains(help, "--"+flag+" ")
	}
	res := RunCommand(t, 30*time.Second, nil, Binary(t), command, "--help")
	if res.Err != nil {
		// Not kept: a failed run says nothing about the binary.
		return strings.Contains(res.Stdout+res.Stderr, "--"+flag+" ")
	}
	if supported.help == nil {
		supported.help = make(map[string]string)
	}
	supported.help[command] = res.Stdout + res.Stderr
	return strings.Contains(supported.help[command], "--"+flag+" ")
}

// supported holds `skein <command> --help` per command for SupportsFlag.
var supported struct {
	sync.Mutex
	help map[string]string
}
