package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// kcatMember is a `kcat -G` balanced consumer child process.
type kcatMember struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu struct {
		sync.Mutex
		printed  map[[2]int64]string // partition/offset -> value
		owned    map[int32]bool
		stderr   []string
		exitErr  error
		badLines []string
	}
}

// kcatAssignRE matches the partitions of a rebalance line, "topic [3]".
var kcatAssignRE = regexp.MustCompile(`(\S+) \[(\d+)\]`)

func startKcatMember(t *testing.T, kcat, name, bootstrap, group, topic string) *kcatMember {
	t.Helper()
	// -u: unbuffered stdout, or records wait in stdio buffers.
	args := []string{"-u", "-b", bootstrap, "-G", group,
		"-X", "auto.offset.reset=earliest",
		"-X", "auto.commit.interval.ms=500",
		"-X", "session.timeout.ms=6000",
		"-f", `%p %o %s\n`,
		topic}
	cmd := exec.Command(kcat, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKEIN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	m := &kcatMember{name: name, cmd: cmd, done: make(chan struct{})}
	m.mu.printed = make(map[[2]int64]string)
	m.mu.owned = make(map[int32]bool)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Logf("started %s (pid %d): kcat %s", name, cmd.Process.Pid, strings.Join(args, " "))
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); m.readStdout(stdout) }()
	go func() { defer readers.Done(); m.readStderr(stderr, topic) }()
	go func() {
		readers.Wait()
		err := cmd.Wait()
		m.mu.Lock()
		m.mu.exitErr = err
		m.mu.Unlock()
		close(m.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-m.done
		if t.Failed() {
			m.mu.Lock()
			t.Logf("---- %s stderr ----\n%s", name, strings.Join(m.mu.stderr, "\n"))
			m.mu.Unlock()
		}
	})
	return m
}

func (m *kcatMember) readStdout(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		m.mu.Lock()
		var part, off int64
		var err1, err2 error = fmt.Errorf("short line"), nil
		if len(f) == 3 {
			part, err1 = strconv.ParseInt(f[0], 10, 32)
			off, err2 = strconv.ParseInt(f[1], 10, 64)
		}
		if err1 != nil || err2 != nil {
			m.mu.badLines = append(m.mu.badLines, sc.Text())
		} else {
			m.mu.printed[[2]int64{part, off}] = f[2]
		}
		m.mu.Unlock()
	}
}

func (m *kcatMember) readStderr(r io.Reader, topic string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		m.mu.Lock()
		m.mu.stderr = append(m.mu.stderr, line)
		// "% Group g rebalanced (memberid ...): assigned: t [0], t [1]"
		// and "...: revoked: t [0], t [1]".
		for _, verb := range []string{"assigned:", "revoked:"} {
			_, rest, ok := strings.Cut(line, verb)
			if !ok {
				continue
			}
			for _, mm := range kcatAssignRE.FindAllStringSubmatch(rest, -1) {
				if mm[1] != topic {
					continue
				}
				p, _ := strconv.Atoi(mm[2])
				m.mu.owned[int32(p)] = verb == "assigned:"
			}
		}
		m.mu.Unlock()
	}
}

func (m *kcatMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p, ok := range m.mu.owned {
		if ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (m *kcatMember) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// TestKcatGroupBalancedConsumer: two `kcat -G` balanced consumers
// (librdkafka's group protocol, eager range/roundrobin assignors) share a
// 4-partition topic; together they print every record, records produced
// before they joined included (auto.offset.reset=earliest), and their
// auto-commits bring the group's committed offsets to the end of every
// partition.
func TestKcatGroupBalancedConsumer(t *testing.T) {
	const (
		topic      = "kcat-group"
		group      = "kcat-grp"
		partitions = 4
		before     = 2000
		after      = 2000
	)
	kcat := kcatBinary(t)
	c := harness.StartCluster(t, harness.Options{Brokers: 1, BrokerArgs: groupBrokerArgs})
	createTopic(t, c, topic, partitions, 1, nil)
	producer := c.Client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, producer, topic, "before", before, &ledger)

	members := []*kcatMember{
		startKcatMember(t, kcat, "kcat-1", c.Bootstrap(), group, topic),
		startKcatMember(t, kcat, "kcat-2", c.Bootstrap(), group, topic),
	}
	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		union := make(map[int32]bool)
		var parts []string
		for _, m := range members {
			if m.exited() {
				t.Fatalf("%s exited", m.name)
			}
			owned := m.owned()
			parts = append(parts, fmt.Sprintf("%s %v", m.name, owned))
			for _, p := range owned {
				union[p] = true
			}
			if len(owned) == 0 {
				return false, "assignment: " + strings.Join(parts, ", ")
			}
		}
		return len(union) == partitions, "assignment: " + strings.Join(parts, ", ")
	})
	produceNumbered(t, producer, topic, "after", after, &ledger)

	acks := ledger.Acks()
	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		missing := 0
		var example string
		for _, a := range acks {
			k := [2]int64{int64(a.Partition), a.Offset}
			found := false
			for _, m := range members {
				m.mu.Lock()
				v, ok := m.mu.printed[k]
				m.mu.Unlock()
				if ok {
					found = true
					if v != a.Value {
						t.Fatalf("%s printed %q at %d/%d, acknowledged there: %q", m.name, v, a.Partition, a.Offset, a.Value)
					}
				}
			}
			if !found {
				missing++
				example = fmt.Sprintf("%d/%d", a.Partition, a.Offset)
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d acknowledged records not printed, e.g. %s", missing, len(acks), example)
	})
	adm := c.Admin(t)
	committed := waitCommittedAtEnd(t, adm, group, topic, partitions, 30*time.Second)
	t.Logf("committed: %v", committed)

	// Both stop cleanly (SIGTERM: kcat closes its consumer, leaving the
	// group); the offsets stay.
	for _, m := range members {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, m := range members {
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still running 30s after SIGTERM", m.name)
		}
		m.mu.Lock()
		if len(m.mu.badLines) > 0 {
			t.Errorf("%s printed %d lines that are not 'partition offset value', first %q", m.name, len(m.mu.badLines), m.mu.badLines[0])
		}
		m.mu.Unlock()
	}
	waitCommittedAtEnd(t, adm, group, topic, partitions, 30*time.Second)
	res := c.RunCLI(t, 30*time.Second, nil, "group", "describe", group)
	if res.Err != nil {
		t.Fatalf("skein group describe: %v\n%s", res.Err, res.Stderr)
	}
	t.Logf("skein group describe %s:\n%s", group, res.Stdout)
	for p := range partitions {
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^%s\s+%s\s+%d\s+(\d+)\s+(\d+)\s+0\s`, group, topic, p))
		if m := row.FindStringSubmatch(res.Stdout); m == nil || m[1] != m[2] || m[1] != strconv.FormatInt(committed[int32(p)], 10) {
			t.Errorf("describe: partition %d is not at committed offset %d with lag 0", p, committed[int32(p)])
		}
	}
}
