package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/test/harness"
)

// topFrame is what a test reads from one `skein top --once` frame.
type topFrame struct {
	brokers map[int32][]string  // ID -> ADDRESS RACK STATUS LEADERS REPLICAS
	topics  map[string][]string // TOPIC -> PARTITIONS RF UNDER-REPLICATED OFFLINE
	leader  string              // the quorum line
}

// parseTopFrame reads the broker and topic tables of a frame.
func parseTopFrame(out string) topFrame {
	f := topFrame{brokers: map[int32][]string{}, topics: map[string][]string{}}
	table := ""
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			table = ""
		case fields[0] == "ID" || fields[0] == "TOPIC" || fields[0] == "NODE":
			table = fields[0]
		case strings.HasPrefix(line, "Controller quorum:"):
			f.leader = line
		case table == "ID" && len(fields) == 6:
			id, err := strconv.Atoi(fields[0])
			if err == nil {
				f.brokers[int32(id)] = fields[1:]
			}
		case table == "TOPIC" && len(fields) >= 5:
			f.topics[fields[0]] = fields[1:5]
		}
	}
	return f
}

// TestTop: `skein top --once` against 1 controller and 3 brokers prints
// the three brokers alive with the replicas they host, the quorum's
// leader, and the topic with no under-replicated partition; once broker
// 103 is stopped, a later frame shows it fenced and the topic's three
// partitions under-replicated (each had a replica on it). Output to a
// pipe carries no ANSI sequences.
func TestTop(t *testing.T) {
	const topic = "top-urp"
	c := harness.StartCluster(t, harness.Options{Brokers: 3})
	createTopic(t, c, topic, 3, 3, nil)

	var last string
	waitFrame := func(what string, ok func(topFrame) (bool, string)) {
		t.Helper()
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			res := c.RunCLI(t, 20*time.Second, nil, "top", "--once")
			last = res.Stdout
			if res.Err != nil {
				return false, fmt.Sprintf("skein top --once: %v\n%s", res.Err, res.Stderr)
			}
			if strings.Contains(res.Stdout, "\x1b") {
				t.Fatalf("ANSI sequences in output to a pipe:\n%q", res.Stdout)
			}
			good, why := ok(parseTopFrame(res.Stdout))
			return good, what + ": " + why + "\n" + res.Stdout
		})
	}

	waitFrame("all alive", func(f topFrame) (bool, string) {
		for _, id := range []int32{101, 102, 103} {
			b := f.brokers[id]
			if b == nil {
				return false, fmt.Sprintf("broker %d not listed", id)
			}
			if b[2] != "alive" || b[4] != "3" {
				return false, fmt.Sprintf("broker %d: %v, want alive with 3 replicas", id, b)
			}
			if b[0] != c.Broker(id).Addr {
				return false, fmt.Sprintf("broker %d at %s, want %s", id, b[0], c.Broker(id).Addr)
			}
		}
		tp := f.topics[topic]
		if tp == nil || tp[0] != "3" || tp[1] != "3" || tp[2] != "0" || tp[3] != "0" {
			return false, fmt.Sprintf("topic row %v, want 3 partitions, RF 3, 0 under-replicated, 0 offline", tp)
		}
		if !strings.Contains(f.leader, "leader 1,") {
			return false, "quorum line " + strconv.Quote(f.leader) + ", want leader 1"
		}
		return true, ""
	})
	t.Logf("first frame:\n%s", last)

	c.Broker(103).MustStop()
	waitFrame("103 stopped", func(f topFrame) (bool, string) {
		b := f.brokers[103]
		if b == nil || b[2] == "alive" {
			return false, fmt.Sprintf("broker 103: %v, want not alive", b)
		}
		if b[3] != "0" {
			return false, fmt.Sprintf("broker 103 leads %s partitions, want 0", b[3])
		}
		if tp := f.topics[topic]; tp == nil || tp[2] != "3" || tp[3] != "0" {
			return false, fmt.Sprintf("topic row %v, want 3 under-replicated, 0 offline", tp)
		}
		return true, ""
	})
	t.Logf("frame with 103 stopped:\n%s", last)
}
