package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStopTimeout bounds a clean shutdown (SIGTERM until exit).
const DefaultStopTimeout = 30 * time.Second

// killTimeout bounds the wait for a SIGKILLed process to be reaped.
const killTimeout = 10 * time.Second

// Process is one child process that can be started again after it exits.
// Each start appends to the same log file (stdout and stderr together),
// headed by a line naming the start. Methods are safe for concurrent use.
type Process struct {
	Name    string // for messages: "controller-1", "broker-101"
	LogPath string // stdout and stderr of every start

	bin  string
	args []string
	env  []string

	mu struct {
		sync.Mutex
		cmd       *exec.Cmd     // current or last start; nil before the first
		done      chan struct{} // closed when cmd has exited
		exitErr   error         // cmd's exit status once done is closed
		expected  bool          // the current start was asked to exit
		paused    bool
		starts    int
		surprises []string // unexpected exits, reported at cleanup
	}
}

func newProcess(name, logPath, bin string, args []string) *Process {
	p := &Process{Name: name, LogPath: logPath, bin: bin, args: args, env: childEnv()}
	return p
}

// childEnv is the test's environment without SKEIN_* variables: those are
// the flags' environment twins and would silently reconfigure the nodes.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKEIN_") {
			env = append(env, kv)
		}
	}
	return env
}

// Args returns the command line the process is started with (without the
// binary).
func (p *Process) Args() []string { return append([]string(nil), p.args...) }

// Start starts the process. It fails if the process is running.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return fmt.Errorf("%s: already running (pid %d)", p.Name, p.mu.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.mu.starts++
	fmt.Fprintf(f, "=== harness: start #%d at %s: %s %s\n", p.mu.starts, time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	// The node dies with the test binary even if the test never cleans up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: start: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.cmd, p.mu.done, p.mu.exitErr, p.mu.expected, p.mu.paused = cmd, done, nil, false, false
	start := p.mu.starts
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== harness: start #%d exited at %s: %v\n", start, time.Now().Format(time.RFC3339Nano), exitText(err))
		_ = f.Close()
		p.mu.Lock()
		p.mu.exitErr = err
		if !p.mu.expected {
			p.mu.surprises = append(p.mu.surprises, fmt.Sprintf("start #%d exited on its own: %v", start, exitText(err)))
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Pid returns the pid of the current start (0 before the first).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.cmd == nil || p.mu.cmd.Process == nil {
		return 0
	}
	return p.mu.cmd.Process.Pid
}

// Running reports whether the current start has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *Process) runningLocked() bool {
	if p.mu.done == nil {
		return false
	}
	select {
	case <-p.mu.done:
		return false
	default:
		return true
	}
}

// Exited returns whether the current start has exited and, if so, its exit
// status (nil for status 0).
func (p *Process) Exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.done == nil || p.runningLocked() {
		return false, nil
	}
	return true, p.mu.exitErr
}

// signal sends sig to the running process and marks the exit as expected
// when expectExit is set. It returns the done channel, or nil when the
// process is not running.
func (p *Process) signal(sig syscall.Signal, expectExit bool) (chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return nil, nil
	}
	if expectExit {
		p.mu.expected = true
	}
	if err := p.mu.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return nil, fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.mu.paused = true
	case syscall.SIGCONT:
		p.mu.paused = false
	}
	return p.mu.done, nil
}

// Hangup sends SIGHUP (a node reloads its TLS material).
func (p *Process) Hangup() error {
	_, err := p.signal(syscall.SIGHUP, false)
	return err
}

// Kill sends SIGKILL (a crash: no shutdown code runs) and waits until the
// process is reaped. Killing a process that is not running does nothing.
func (p *Process) Kill() error {
	done, err := p.signal(syscall.SIGKILL, true)
	if err != nil || done == nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("%s: not reaped %v after SIGKILL", p.Name, killTimeout)
	}
}

// Stop sends SIGTERM (resuming a paused process first) and waits up to
// timeout for a clean exit. A process that does not exit in time is
// killed. It returns an error unless the process exited with status 0.
// Stopping a process that is not running does nothing.
func (p *Process) Stop(timeout time.Duration) error {
	p.mu.Lock()
	paused := p.mu.paused
	p.mu.Unlock()
	done, err := p.signal(syscall.SIGTERM, true)
	if err != nil || done == nil {
		return err
	}
	if paused {
		// A stopped process handles SIGTERM only once continued.
		if _, err := p.signal(syscall.SIGCONT, true); err != nil {
			return err
		}
	}
	select {
	case <-done:
	case <-time.After(timeout):
		_ = p.Kill()
		return fmt.Errorf("%s: still running %v after SIGTERM; killed", p.Name, timeout)
	}
	if _, err := p.Exited(); err != nil {
		return fmt.Errorf("%s: unclean exit after SIGTERM: %w", p.Name, err)
	}
	return nil
}

// Pause freezes the process (SIGSTOP): its sockets stay open but nothing
// answers, like a long GC pause or a hung machine.
func (p *Process) Pause() error {
	done, err := p.signal(syscall.SIGSTOP, false)
	if err == nil && done == nil {
		err = fmt.Errorf("%s: not running", p.Name)
	}
	return err
}

// Resume continues a paused process (SIGCONT).
func (p *Process) Resume() error {
	done, err := p.signal(syscall.SIGCONT, false)
	if err == nil && done == nil {
		err = fmt.Errorf("%s: not running", p.Name)
	}
	return err
}

// surprises returns the unexpected exits seen so far.
func (p *Process) surprises() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.mu.surprises...)
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	return tailFile(p.LogPath, n)
}

// tailFile returns the last n lines of the file at path (reading at most
// its last 256 KiB).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const window = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		_, _ = f.Seek(st.Size()-window, io.SeekStart)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// LogSize returns the current size of the process's log file (0 if there
// is none yet): pass it to LogSince to see only what is logged afterwards.
func (p *Process) LogSize() int64 {
	st, err := os.Stat(p.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogSince returns the process's log from byte offset off on (at most its
// last 4 MiB).
func (p *Process) LogSince(off int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 4 << 20
	if st, err := f.Stat(); err == nil && st.Size()-off > window {
		off = st.Size() - window
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	return string(data)
}
