package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childTailLines is how many of a Child's last stderr lines are kept for
// the failure report.
const childTailLines = 50

// Child is a short-lived child process of a test (a client such as
// `skein consume` or kcat) whose output the test reads line by line: every
// stdout and stderr line is handed to a callback as it arrives. It is
// SIGKILLed at the test's cleanup (and when the test binary dies), and
// when the test failed its last stderr lines are logged. Unlike Process it
// is started once and has no log file. Methods are safe for concurrent
// use.
type Child struct {
	Name string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited and its output was read

	mu struct {
		sync.Mutex
		exitErr error
		tail    []string // last stderr lines
	}
}

// ChildOutput receives the lines of a Child, without their newline. Each
// callback is called from one goroutine of its own (stdout and stderr
// concurrently), in line order; nil ignores the stream.
type ChildOutput struct {
	Stdout func(line string)
	Stderr func(line string)
}

// StartChild starts bin with args (the caller's environment without
// SKEIN_* variables) and hands its output lines to out.
func StartChild(t testing.TB, name, bin string, args []string, out ChildOutput) *Child {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := &Child{Name: name, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Logf("started %s (pid %d): %s %s", name, cmd.Process.Pid, bin, strings.Join(args, " "))
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); readLines(stdout, out.Stdout) }()
	go func() {
		defer readers.Done()
		readLines(stderr, func(line string) {
			ch.mu.Lock()
			ch.mu.tail = append(ch.mu.tail, line)
			if len(ch.mu.tail) > childTailLines {
				ch.mu.tail = ch.mu.tail[1:]
			}
			ch.mu.Unlock()
			if out.Stderr != nil {
				out.Stderr(line)
			}
		})
	}()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		err := cmd.Wait()
		ch.mu.Lock()
		ch.mu.exitErr = err
		ch.mu.Unlock()
		close(ch.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ch.done
		if t.Failed() {
			t.Logf("---- %s: last stderr lines ----\n%s", name, strings.Join(ch.Tail(), "\n"))
		}
	})
	return ch
}

// readLines hands every line of r to fn (nil: discard) until EOF.
func readLines(r io.Reader, fn func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if fn != nil {
			fn(sc.Text())
		}
	}
	_, _ = io.Copy(io.Discard, r) // a line over 1 MiB: do not block the child
}

// Tail returns the last stderr lines.
func (ch *Child) Tail() []string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return append([]string(nil), ch.mu.tail...)
}

// Pid is the child's process id.
func (ch *Child) Pid() int { return ch.cmd.Process.Pid }

// Exited reports whether the process has exited and its output was read.
func (ch *Child) Exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// Done is closed once the process has exited and its output was read.
func (ch *Child) Done() <-chan struct{} { return ch.done }

// Kill SIGKILLs the process and waits until it was reaped and its output
// read.
func (ch *Child) Kill(t testing.TB) {
	t.Helper()
	_ = ch.cmd.Process.Kill()
	select {
	case <-ch.done:
	case <-time.After(killTimeout):
		t.Fatalf("%s not reaped %v after SIGKILL", ch.Name, killTimeout)
	}
}

// Signal sends sig without waiting.
func (ch *Child) Signal(sig syscall.Signal) error {
	if err := ch.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %v: %w", ch.Name, sig, err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit and returns its exit
// status (nil for status 0), or an error when it is still running.
func (ch *Child) Wait(timeout time.Duration) error {
	select {
	case <-ch.done:
	case <-time.After(timeout):
		return fmt.Errorf("%s: still running after %v", ch.Name, timeout)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.mu.exitErr != nil {
		return fmt.Errorf("%s: %w", ch.Name, ch.mu.exitErr)
	}
	return nil
}

// Stop sends SIGTERM and waits up to timeout for the exit; it returns an
// error unless the process exited with status 0 in time.
func (ch *Child) Stop(timeout time.Duration) error {
	if err := ch.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := ch.Wait(timeout); err != nil {
		return fmt.Errorf("after SIGTERM: %w", err)
	}
	return nil
}
