package harness

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// echoServer echoes lines back until closed at cleanup.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// ping writes a line on c and reads it back within timeout.
func ping(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("read %q", line)
	}
	return nil
}

func TestProxyCutHeal(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	c1, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if err := ping(c1, 5*time.Second); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}

	p.Cut()
	if err := ping(c1, 5*time.Second); err == nil {
		t.Error("a connection open before Cut still works")
	}
	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err) // accepted, but blackholed
	}
	defer c2.Close()
	if err := ping(c2, 300*time.Millisecond); err == nil {
		t.Error("a connection made during Cut was answered")
	}

	p.Heal()
	c3, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := ping(c3, 5*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

// TestProxyBlock: Block drops the connection of one process (a bash
// child talking through the proxy) and leaves the test's own alone.
func TestProxyBlock(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	_, port, _ := net.SplitHostPort(p.Addr)
	script := `exec 3<>/dev/tcp/127.0.0.1/` + port + `
while :; do echo ping >&3; if read -t 2 line <&3; then echo "got $line"; else echo closed; exec sleep 60; fi; sleep 0.05; done`
	proc := newProcess("bash", filepath.Join(t.TempDir(), "bash.log"), "/bin/bash", []string{"-c", script})
	if err := proc.Start(); err != nil {
		t.Skipf("no bash: %v", err)
	}
	t.Cleanup(func() { _ = proc.Kill() })
	WaitFor(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(proc.Tail(5), "got ping"), "bash log: " + proc.Tail(5)
	})
	mine, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	if err := ping(mine, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	if err := p.Block(proc); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(proc.Tail(5), "closed"), "bash log: " + proc.Tail(5)
	})
	if err := ping(mine, 5*time.Second); err != nil {
		t.Errorf("another process's connection was cut by Block: %v", err)
	}
}
