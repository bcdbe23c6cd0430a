package cli

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestProcStatCPU(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime ...
	const rest = " S 1 1 1 0 -1 4194304 100 0 0 0 1234 766 55 66 20 0 9 0 71375 3133440 411"
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", stat: "4242 (skein)" + rest + "\n", want: 20 * time.Second},
		// The command may hold spaces and parentheses; children's times
		// (cutime, cstime) are not the process's.
		{name: "command with parens", stat: "7 (a (b) c)" + rest, want: 20 * time.Second},
		{name: "zero", stat: "7 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0", want: 0},
		{name: "no command", stat: "7 x R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0", wantErr: true},
		{name: "short", stat: "7 (x) R 1 1 1 0 -1 0 0 0 0 0 5", wantErr: true},
		{name: "not a number", stat: "7 (x) R 1 1 1 0 -1 0 0 0 0 0 5x 1", wantErr: true},
		{name: "negative", stat: "7 (x) R 1 1 1 0 -1 0 0 0 0 0 -5 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := procStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids(" 12, 345 ,,6")
	if err != nil || !slices.Equal(got, []int{12, 345, 6}) {
		t.Errorf("parsePids = %v, %v; want [12 345 6]", got, err)
	}
	if got, err := parsePids(""); err != nil || got != nil {
		t.Errorf("parsePids(\"\") = %v, %v; want nothing", got, err)
	}
	for _, bad := range []string{"x", "0", "-3", "12,3a"} {
		if _, err := parsePids(bad); err == nil {
			t.Errorf("parsePids(%q) succeeded", bad)
		}
	}
}

// TestProcessCPUOfSelf reads this test process's own /proc entry: its CPU
// time must grow while it spins, as getrusage's does.
func TestProcessCPUOfSelf(t *testing.T) {
	pids := []int{os.Getpid()}
	before, err := sampleCPU(pids)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		now, err := sampleCPU(pids)
		if err != nil {
			t.Fatal(err)
		}
		// Three ticks of /proc, so rounding cannot make it pass.
		if now.server-before.server >= 30*time.Millisecond && now.client > before.client {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not grow while spinning: /proc %v -> %v, getrusage %v -> %v",
				before.server, now.server, before.client, now.client)
		}
		spin(time.Millisecond)
	}
	if _, err := processCPU([]int{1 << 30}); err == nil {
		t.Error("processCPU of a pid that cannot exist succeeded")
	}
}

// spin burns CPU for about d.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

func TestCPUWindow(t *testing.T) {
	pids := []int{os.Getpid()}
	w := startCPUWindow(pids, time.Now().Add(time.Hour))
	if _, err := w.end(); err != errEndedInWarmup {
		t.Errorf("end before the window started: err = %v, want errEndedInWarmup", err)
	}
	w = startCPUWindow(pids, time.Now())
	used, err := w.end()
	if err != nil {
		t.Fatal(err)
	}
	if used.server < 0 || used.client < 0 {
		t.Errorf("negative CPU time: %+v", used)
	}
}
