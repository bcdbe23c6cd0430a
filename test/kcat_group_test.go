package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// kcatAssignRE matches the partitions of a rebalance line, "topic [3]".
var kcatAssignRE = regexp.MustCompile(`(\S+) \[(\d+)\]`)

// startKcatMember starts a `kcat -G` balanced consumer that prints
// "partition offset value" lines.
func startKcatMember(t *testing.T, kcat, name, bootstrap, group, topic string) *memberProc {
	t.Helper()
	// -u: unbuffered stdout, or records wait in stdio buffers.
	args := []string{"-u", "-b", bootstrap, "-G", group,
		"-X", "auto.offset.reset=earliest",
		"-X", "auto.commit.interval.ms=500",
		"-X", "session.timeout.ms=6000",
		"-f", `%p %o %s\n`,
		topic}
	m := newMemberProc()
	m.Child = harness.StartChild(t, name, kcat, args, harness.ChildOutput{
		Stdout: m.printedLine,
		Stderr: func(line string) {
			// "% Group g rebalanced (memberid ...): assigned: t [0], t [1]"
			// and "...: revoked: t [0], t [1]".
			for _, verb := range []string{"assigned:", "revoked:"} {
				_, rest, ok := strings.Cut(line, verb)
				if !ok {
					continue
				}
				for _, mm := range kcatAssignRE.FindAllStringSubmatch(rest, -1) {
					if p, err := strconv.Atoi(mm[2]); err == nil && mm[1] == topic {
						m.setOwned(int32(p), verb == "assigned:")
					}
				}
			}
		},
	})
	return m
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

	members := []*memberProc{
		startKcatMember(t, kcat, "kcat-1", c.Bootstrap(), group, topic),
		startKcatMember(t, kcat, "kcat-2", c.Bootstrap(), group, topic),
	}
	waitAssigned(t, 60*time.Second, partitions, members...)
	produceNumbered(t, producer, topic, "after", after, &ledger)

	acks := ledger.Acks()
	waitAllPrinted(t, 60*time.Second, acks, members...)
	checkPrintedValues(t, acks, members...)
	adm := c.Admin(t)
	committed := waitCommittedAtEnd(t, adm, group, topic, partitions, 30*time.Second)
	t.Logf("committed: %v", committed)

	// Both stop cleanly (SIGTERM: kcat closes its consumer, leaving the
	// group); the offsets stay.
	stopMembers(t, members...)
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
