package harness

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shellProcess runs a shell loop that exits 0 on SIGTERM.
func shellProcess(t *testing.T) *Process {
	script := `trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 0.05; done`
	return newProcess("sh", filepath.Join(t.TempDir(), "sh.log"), "/bin/sh", []string{"-c", script})
}

func TestProcessLifecycle(t *testing.T) {
	p := shellProcess(t)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err == nil {
		t.Error("second Start of a running process succeeded")
	}
	WaitFor(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(p.Tail(5), "\nhello"), "no hello in log: " + p.Tail(5)
	})
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	// Stop of a paused process resumes it so it can handle SIGTERM.
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop: %v\n%s", err, p.Tail(20))
	}
	if !strings.Contains(p.Tail(5), "\nbye") {
		t.Errorf("log lacks the clean exit:\n%s", p.Tail(5))
	}

	// Restart after a stop, then kill: an unclean exit that was asked for.
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Exited(); !exited || err == nil {
		t.Errorf("after Kill: exited %v, err %v; want exited with a signal status", exited, err)
	}
	if s := p.surprises(); len(s) != 0 {
		t.Errorf("surprises %q after requested exits", s)
	}
	if got := strings.Count(p.Tail(100), "=== harness: start #"); got != 4 {
		t.Errorf("log has %d harness start/exit lines, want 4:\n%s", got, p.Tail(100))
	}
}

func TestProcessUnexpectedExit(t *testing.T) {
	p := newProcess("false", filepath.Join(t.TempDir(), "false.log"), "/bin/sh", []string{"-c", "exit 3"})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() (bool, string) {
		exited, _ := p.Exited()
		return exited, "still running"
	})
	if s := p.surprises(); len(s) != 1 || !strings.Contains(s[0], "exit status 3") {
		t.Errorf("surprises %q, want one naming exit status 3", s)
	}
}
