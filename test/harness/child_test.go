package harness

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestChildLinesAndStop(t *testing.T) {
	var mu sync.Mutex
	var stdout, stderr []string
	script := `trap 'echo bye; exit 0' TERM; echo out1; echo err1 >&2; echo out2; while :; do sleep 0.05; done`
	ch := StartChild(t, "sh", "/bin/sh", []string{"-c", script}, ChildOutput{
		Stdout: func(l string) { mu.Lock(); stdout = append(stdout, l); mu.Unlock() },
		Stderr: func(l string) { mu.Lock(); stderr = append(stderr, l); mu.Unlock() },
	})
	WaitFor(t, 10*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(stdout) == 2 && len(stderr) == 1, "stdout " + strings.Join(stdout, "|") + " stderr " + strings.Join(stderr, "|")
	})
	if ch.Exited() {
		t.Fatal("exited early")
	}
	if err := ch.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(stdout, "|"); got != "out1|out2|bye" {
		t.Errorf("stdout lines %q", got)
	}
	if got := strings.Join(ch.Tail(), "|"); got != "err1" {
		t.Errorf("tail %q", got)
	}
}

func TestChildKillAndExitStatus(t *testing.T) {
	ch := StartChild(t, "sleep", "/bin/sh", []string{"-c", "while :; do sleep 0.05; done"}, ChildOutput{})
	ch.Kill(t)
	if !ch.Exited() {
		t.Fatal("not exited after Kill")
	}
	if err := ch.Wait(time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("exit status after SIGKILL: %v", err)
	}
	bad := StartChild(t, "exit3", "/bin/sh", []string{"-c", "exit 3"}, ChildOutput{})
	if err := bad.Wait(10 * time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Wait: %v, want exit status 3", err)
	}
}
