package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: the kernel's
// USER_HZ, fixed at 100 on every architecture Go runs Linux on (it is
// sysconf(_SC_CLK_TCK), which golang.org/x/sys/unix does not offer on
// Linux).
const userHZ = 100

// procStatCPU parses the contents of /proc/PID/stat and returns the
// process's user plus system CPU time. For a process (thread group
// leader) the kernel sums every thread, including threads that have
// exited, so one file covers the whole process.
func procStatCPU(stat []byte) (time.Duration, error) {
	// Field 2 is the command name in parentheses and may itself hold
	// spaces and parentheses: the fields after it start after the last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	fields := bytes.Fields(stat[end+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	const utimeAt, stimeAt = 14 - 3, 15 - 3
	if len(fields) <= stimeAt {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), stimeAt+1)
	}
	var ticks uint64
	for _, at := range []int{utimeAt, stimeAt} {
		n, err := strconv.ParseUint(string(fields[at]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %d: %w", at+3, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// processCPU is the summed user plus system CPU time of the processes
// pids (all their threads), read from /proc.
func processCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		path := fmt.Sprintf("/proc/%d/stat", pid)
		stat, err := os.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
		}
		cpu, err := procStatCPU(stat)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", path, err)
		}
		total += cpu
	}
	return total, nil
}

// selfCPU is this process's user plus system CPU time (getrusage).
func selfCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// parsePids parses --server-pids: comma-separated positive process ids.
func parsePids(s string) ([]int, error) {
	var pids []int
	for _, part := range splitList(s) {
		pid, err := strconv.Atoi(part)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("--server-pids: %q is not a process id", part)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// cpuSample is the CPU time used so far by the server processes and by
// this process.
type cpuSample struct {
	server, client time.Duration
}

func sampleCPU(serverPids []int) (cpuSample, error) {
	var s cpuSample
	var err error
	if len(serverPids) > 0 {
		if s.server, err = processCPU(serverPids); err != nil {
			return s, err
		}
	}
	s.client, err = selfCPU()
	return s, err
}

// errEndedInWarmup: the run ended before its measured window began.
var errEndedInWarmup = errors.New("every record was produced within --warmup: raise --num-records or --duration, or lower --warmup")

// cpuWindow measures the CPU used between a start time (the end of the
// warm-up) and a call of end.
type cpuWindow struct {
	pids    []int
	at      time.Time
	timer   *time.Timer
	started chan struct{} // closed once before/err are set
	before  cpuSample
	err     error
}

// startCPUWindow takes the first sample at the time at (now if it has
// passed).
func startCPUWindow(pids []int, at time.Time) *cpuWindow {
	w := &cpuWindow{pids: pids, at: at, started: make(chan struct{})}
	w.timer = time.AfterFunc(time.Until(at), w.begin)
	return w
}

// begin takes the first sample.
func (w *cpuWindow) begin() {
	w.before, w.err = sampleCPU(w.pids)
	close(w.started)
}

// end takes the second sample and returns the CPU used in the window. It
// returns errEndedInWarmup when the first sample was never taken.
func (w *cpuWindow) end() (cpuSample, error) {
	select {
	case <-w.started:
	default:
		switch {
		case !w.timer.Stop():
			<-w.started // the first sample is being taken
		case time.Now().Before(w.at):
			return cpuSample{}, errEndedInWarmup
		default: // due, but the timer's goroutine has not run yet
			w.begin()
		}
	}
	if w.err != nil {
		return cpuSample{}, w.err
	}
	after, err := sampleCPU(w.pids)
	if err != nil {
		return cpuSample{}, err
	}
	return cpuSample{server: after.server - w.before.server, client: after.client - w.before.client}, nil
}
