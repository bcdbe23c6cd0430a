package e2e

// Fault tests across containers (issue 14): the Compose cluster of
// deploy/docker-compose.yml (3 controllers, 3 brokers, each its own
// container on a private network) under `skein verify workload`, run from
// the host through the brokers' published ports, while Docker breaks one
// thing at a time and heals it: a killed container, a paused one, one cut
// from the network, the controller leader isolated, a broker and a
// controller cut off together on a network of their own, and a rolling
// restart of every node. After each fault: the workload's checks find
// nothing (it runs with --duration 0 from before the fault until the
// cluster is whole again, then SIGTERM ends it and the checks run),
// `skein replicas verify` finds every replica identical, and every
// partition's ISR is full again. TestComposeFaults (in `make test`) runs
// two faults; TestComposeFaultsLong (`make chaos-docker`) runs all of
// them, CHAOS_DOCKER_ROUNDS times.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/test/harness"
)

const (
	// dockerTopic is the workload's topic: 3 partitions, RF 3,
	// min.insync.replicas=2 (as `skein verify workload` creates it).
	dockerTopic      = "chaos-docker"
	dockerPartitions = 3
	// dockerRequestTimeout bounds one request to one node (a paused
	// broker answers nothing).
	dockerRequestTimeout = 3 * time.Second
	// dockerEffectTimeout bounds the wait for a fault to show (a broker
	// fenced: the controllers' session timeout is 9 s; a new controller
	// leader elected).
	dockerEffectTimeout = time.Minute
	// dockerHealTimeout bounds the wait, after the heal, for full ISRs,
	// a whole quorum and healthy containers.
	dockerHealTimeout = 2 * time.Minute
	// dockerQuorumContact is how recently every controller voter must
	// have fetched from the leader for the quorum to count as whole.
	dockerQuorumContact = 3 * time.Second
	// dockerAfterHeal is how many records the workload must have
	// acknowledged after the cluster healed before it is stopped: the
	// healed cluster takes writes, and they are checked too.
	dockerAfterHeal = 300
)

// The faults, one at a time.
const (
	dockerLeaderKill     = "leader-kill"     // docker kill the leader of a partition, docker start
	dockerControllerKill = "controller-kill" // docker kill the active controller, docker start
	dockerPause          = "pause"           // docker pause the leader of a partition, unpause
	dockerNetCut         = "net-cut"         // the leader of a partition off the network (and the host), reconnected
	dockerCtrlIsolate    = "ctrl-isolate"    // the active controller off the network, reconnected
	dockerMinority       = "minority"        // a broker and a controller on a network of their own, back
	dockerRolling        = "rolling-restart" // docker restart of every node, one by one
)

var (
	// The short run's: a broker container killed and one cut off (the
	// controllers' failover is the quorum tests', with processes; every
	// fault is TestComposeFaultsLong's).
	dockerShortFaults = []string{dockerLeaderKill, dockerNetCut}
	dockerAllFaults   = []string{dockerLeaderKill, dockerControllerKill, dockerPause, dockerNetCut,
		dockerCtrlIsolate, dockerMinority, dockerRolling}
)

// TestComposeFaults is the short fault test across containers: the kill
// of a partition leader's container and a partition leader cut from the
// network, each under its own checked workload run (see the top of this
// file). Skipped without Docker, as TestCompose.
func TestComposeFaults(t *testing.T) {
	runDockerChaos(t, dockerShortFaults, 1, 500, false)
}

// TestComposeFaultsLong runs every fault (or those SKEIN_CHAOS_DOCKER_FAULTS
// lists, comma-separated), SKEIN_CHAOS_DOCKER_ROUNDS times (default 1); it
// runs only with SKEIN_CHAOS_DOCKER=long (`make chaos-docker`).
func TestComposeFaultsLong(t *testing.T) {
	if os.Getenv("SKEIN_CHAOS_DOCKER") != "long" {
		t.Skip("long fault test across containers: run with SKEIN_CHAOS_DOCKER=long (make chaos-docker)")
	}
	rounds := 1
	if s := os.Getenv("SKEIN_CHAOS_DOCKER_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			t.Fatalf("SKEIN_CHAOS_DOCKER_ROUNDS=%q: want a positive number", s)
		}
	}
	faults := dockerAllFaults
	if s := os.Getenv("SKEIN_CHAOS_DOCKER_FAULTS"); s != "" {
		faults = strings.Split(s, ",")
		for _, f := range faults {
			if !slices.Contains(dockerAllFaults, f) {
				t.Fatalf("SKEIN_CHAOS_DOCKER_FAULTS: unknown fault %q (the faults: %s)", f, strings.Join(dockerAllFaults, ","))
			}
		}
	}
	runDockerChaos(t, faults, rounds, 1000, true)
}

// dockerRow is one fault's line of the summary.
type dockerRow struct {
	round         int
	fault, target string
	// effect: from the fault until it showed (a broker fenced, a new
	// controller leader); heal: from the heal until every ISR was full and
	// the quorum whole; healthy: from the heal until every container's
	// health check passed.
	effect, heal, healthy time.Duration
	acked, indeterminate  int
	anomalies             int
	replicas              string // `skein replicas verify`: ok, or what failed
	note                  string
}

// dockerChaos is the state of a fault run.
type dockerChaos struct {
	t       *testing.T
	c       *harness.Compose
	bin     string
	dir     string
	rate    int
	brokers map[int32]*kgo.Client // per broker id, seeded with its published port only
	ports   map[int32]int
	rows    []dockerRow
	// minority is the network of the minority fault, made on first use.
	minority string
}

// runDockerChaos runs each fault of faults, rounds times, under a workload
// of rate records/s. The workload histories, the containers' logs and the
// summary go to a directory that is kept when the test fails, or always
// with keep.
func runDockerChaos(t *testing.T, faults []string, rounds, rate int, keep bool) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "skein-chaos-docker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if keep || t.Failed() {
			t.Logf("workload histories, container logs and the summary are in %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	c := harness.StartCompose(t, harness.ComposeOptions{StartTimeout: 2 * time.Minute})
	d := &dockerChaos{t: t, c: c, bin: harness.Binary(t), dir: dir, rate: rate,
		brokers: map[int32]*kgo.Client{}, ports: map[int32]int{}}
	// Runs before the containers are removed.
	t.Cleanup(func() {
		out, err := c.Compose(2*time.Minute, "logs", "--no-color", "--timestamps")
		if err != nil {
			t.Errorf("docker-compose logs: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "compose.log"), []byte(out), 0o644); err != nil {
			t.Error(err)
		}
	})
	for i, port := range c.HostPorts {
		id := int32(101 + i)
		d.ports[id] = port
		d.brokers[id] = c.Client(t, kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", port)),
			kgo.DialTimeout(dockerRequestTimeout), kgo.RequestRetries(0))
	}
	t.Cleanup(func() { d.summary(time.Since(began)) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := kadm.NewClient(c.Client(t)).CreateTopic(ctx, dockerPartitions, 3,
		map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, dockerTopic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", dockerTopic, err)
	}
	d.waitWhole("after the topic was created", time.Now(), time.Minute)

	for round := 1; round <= rounds; round++ {
		for i, fault := range faults {
			// A partition, and so a leader, that changes from fault to
			// fault and from round to round.
			d.run(round, fault, int32(round-1+i)%dockerPartitions)
			if t.Failed() {
				return
			}
		}
	}
}

// run applies one fault under a workload run of its own and checks the
// outcome; it adds a row to the summary.
func (d *dockerChaos) run(round int, fault string, p int32) {
	t := d.t
	row := dockerRow{round: round, fault: fault, replicas: "-"}
	defer func() { d.rows = append(d.rows, row) }()
	t.Logf("==== round %d: %s ====", round, fault)

	history := filepath.Join(d.dir, fmt.Sprintf("r%d-%s.jsonl", round, fault))
	var stdout strings.Builder
	var mu sync.Mutex
	w := harness.StartChild(t, "verify workload ("+fault+")", d.bin, []string{"verify", "workload",
		"--bootstrap-server", d.c.Bootstrap(), "--topic", dockerTopic, "--duration", "0",
		"--rate", strconv.Itoa(d.rate), "--history", history, "--drain-timeout", "2m", "--report-interval", "5s"},
		harness.ChildOutput{
			Stdout: func(line string) {
				mu.Lock()
				defer mu.Unlock()
				stdout.WriteString(line + "\n")
			},
			Stderr: func(line string) {
				if !strings.Contains(line, "unable to open connection to broker") { // on every dial retry while a broker is down
					t.Logf("workload: %s", line)
				}
			},
		})
	waitWorkloadRunning(t, history)

	var healAt time.Time
	switch fault {
	case dockerLeaderKill:
		healAt = d.brokerFault(&row, p, "kill", "start")
	case dockerPause:
		healAt = d.brokerFault(&row, p, "pause", "unpause")
	case dockerNetCut:
		healAt = d.brokerNetCut(&row, p)
	case dockerMinority:
		healAt = d.minorityIsolate(&row, p)
	case dockerControllerKill:
		healAt = d.controllerFault(&row, false)
	case dockerCtrlIsolate:
		healAt = d.controllerFault(&row, true)
	case dockerRolling:
		healAt = d.rollingRestart(&row)
	default:
		t.Fatalf("unknown fault %q", fault)
	}

	// Healed: every ISR full and the quorum whole, and every container
	// healthy (a rolling restart measured each node already). The health
	// checks run every 5 s, so that wait overlaps the workload's writes
	// after the heal and its checks; the fault ends when both are done.
	type healthResult struct {
		after time.Duration
		err   error
	}
	healthy := make(chan healthResult, 1)
	if !healAt.IsZero() {
		go func() {
			err := harness.Poll(dockerHealTimeout, d.c.Healthy)
			healthy <- healthResult{time.Since(healAt), err}
		}()
		d.waitWhole(fault+" healed", time.Now(), dockerHealTimeout)
		row.heal = time.Since(healAt)
		t.Logf("%s: ISRs full and quorum whole %v after the heal", fault, row.heal.Round(time.Millisecond))
	} else {
		healthy <- healthResult{}
	}

	// The healed cluster takes writes; then the run ends and is checked.
	waitAcked(t, history, dockerAfterHeal, time.Minute)
	err := w.Stop(3 * time.Minute)
	mu.Lock()
	t.Logf("workload report (%s):\n%s", fault, stdout.String())
	mu.Unlock()
	if err != nil {
		t.Errorf("%s: skein verify workload: %v", fault, err)
	}
	report := checkWorkloadHistory(t, history)
	row.acked, row.indeterminate, row.anomalies = report.Acknowledged, report.Indeterminate, len(report.Anomalies)

	res := harness.RunCommand(t, 3*time.Minute, nil, d.bin, "replicas", "verify", dockerTopic,
		"--bootstrap-server", d.c.Bootstrap(), "--hw-wait", "30s")
	t.Logf("replicas verify:\n%s%s", res.Stdout, res.Stderr)
	row.replicas = "identical"
	if res.Err != nil {
		row.replicas = "FAILED"
		t.Errorf("%s: skein replicas verify %s: %v", fault, dockerTopic, res.Err)
	}
	h := <-healthy
	if h.err != nil {
		t.Fatalf("%s: containers not healthy after the heal: %v", fault, h.err)
	}
	if !healAt.IsZero() {
		row.healthy = h.after
		t.Logf("%s: containers healthy %v after the heal", fault, row.healthy.Round(time.Millisecond))
	}
	// The next fault starts from a whole cluster.
	d.waitWhole("after "+fault, time.Now(), dockerHealTimeout)
}

// brokerFault applies `docker <fault>` to the leader of partition p, waits
// until the controllers fenced it (it is in no ISR, as the other brokers
// see it), and applies `docker <heal>`; it returns when it healed.
func (d *dockerChaos) brokerFault(row *dockerRow, p int32, fault, heal string) time.Time {
	victim := d.leader(p, 0)
	svc := brokerService(victim)
	row.target = fmt.Sprintf("%s (leader of %s/%d)", svc, dockerTopic, p)
	start := time.Now()
	d.docker(fault, svc)
	if fault == "kill" {
		d.waitState(svc, "exited") // `docker kill` is a manual stop: no restart
	}
	d.waitFenced(victim)
	row.effect = time.Since(start)
	healAt := time.Now()
	d.docker(heal, svc)
	return healAt
}

// brokerNetCut disconnects the leader of partition p from the project's
// network: the other nodes cannot reach it, and neither can the host (the
// published port goes with the network). It reconnects it, under its
// service name, once the controllers fenced it.
func (d *dockerChaos) brokerNetCut(row *dockerRow, p int32) time.Time {
	victim := d.leader(p, 0)
	svc := brokerService(victim)
	row.target = fmt.Sprintf("%s (leader of %s/%d)", svc, dockerTopic, p)
	start := time.Now()
	d.docker("network", "disconnect", d.c.Network(), svc)
	if err := d.dial(victim); err == nil {
		d.t.Fatalf("%s: its published port still answers after docker network disconnect", svc)
	} else {
		d.t.Logf("%s cut from the network; its published port: %v", svc, err)
	}
	d.mustReach(brokerService(d.others(victim)[0]), svc+":9092", false)
	d.waitFenced(victim)
	row.effect = time.Since(start)
	healAt := time.Now()
	d.docker("network", "connect", "--alias", svc, d.c.Network(), svc)
	return healAt
}

// minorityIsolate moves the leader of partition p and a controller that is
// not the active one to a network of their own: the minority side of a
// partition (one broker of three, one controller of three), cut from the
// rest of the cluster but not from each other, nor from clients on the
// host (the published port follows the container to its new network).
// Once the controllers fenced the broker, both go back.
func (d *dockerChaos) minorityIsolate(row *dockerRow, p int32) time.Time {
	if d.minority == "" {
		n, err := d.c.NewNetwork("minority")
		if err != nil {
			d.t.Fatal(err)
		}
		d.minority = n
	}
	victim := d.leader(p, 0)
	leader := d.quorumLeader(0)
	ctrl := controllerService(leader%3 + 1)
	svc := brokerService(victim)
	row.target = fmt.Sprintf("%s (leader of %s/%d) + %s", svc, dockerTopic, p, ctrl)
	start := time.Now()
	for _, s := range []string{svc, ctrl} {
		d.docker("network", "disconnect", d.c.Network(), s)
		d.docker("network", "connect", "--alias", s, d.minority, s)
	}
	harness.WaitFor(d.t, 30*time.Second, func() (bool, string) {
		if err := d.dial(victim); err != nil {
			return false, fmt.Sprintf("%s on the minority network: published port: %v", svc, err)
		}
		return true, ""
	})
	d.mustReach(svc, ctrl+":9093", true)
	d.mustReach(svc, controllerService(leader)+":9093", false)
	d.mustReach(brokerService(d.others(victim)[0]), svc+":9092", false)
	d.waitFenced(victim)
	row.effect = time.Since(start)
	healAt := time.Now()
	for _, s := range []string{svc, ctrl} {
		d.docker("network", "disconnect", d.minority, s)
		d.docker("network", "connect", "--alias", s, d.c.Network(), s)
	}
	return healAt
}

// controllerFault kills the active controller's container (isolate: cuts
// it from the network, from the other controllers and the brokers), waits
// until the others elected a new leader, and heals it.
func (d *dockerChaos) controllerFault(row *dockerRow, isolate bool) time.Time {
	victim := d.quorumLeader(0)
	svc := controllerService(victim)
	row.target = svc + " (active controller)"
	start := time.Now()
	if isolate {
		d.docker("network", "disconnect", d.c.Network(), svc)
		d.mustReach(controllerService(victim%3+1), svc+":9093", false)
	} else {
		d.docker("kill", svc)
		d.waitState(svc, "exited")
	}
	next := d.quorumLeader(victim)
	row.effect = time.Since(start)
	d.t.Logf("controller %d leads the quorum after %v", next, row.effect.Round(time.Millisecond))
	healAt := time.Now()
	if isolate {
		d.docker("network", "connect", "--alias", svc, d.c.Network(), svc)
	} else {
		d.docker("start", svc)
	}
	return healAt
}

// rollingRestart restarts every node, controllers first, each with
// `docker restart` (SIGTERM: a broker's controlled shutdown, up to 30 s,
// then a start), waiting before the next until every ISR is full, the
// quorum whole and every container healthy: the upgrade path. The row's
// heal and healthy times are the longest of one node's (from its restart
// command); it returns the zero time: nothing is left to heal.
func (d *dockerChaos) rollingRestart(row *dockerRow) time.Time {
	row.target = "6 nodes, one by one"
	began := time.Now()
	var longest string
	for _, svc := range []string{"controller-1", "controller-2", "controller-3", "broker-1", "broker-2", "broker-3"} {
		start := time.Now()
		d.docker("restart", "--time", "30", svc)
		d.waitWhole("after restarting "+svc, time.Now(), dockerHealTimeout)
		heal := time.Since(start)
		harness.WaitFor(d.t, dockerHealTimeout, d.c.Healthy)
		healthy := time.Since(start)
		d.t.Logf("%s restarted: ISRs full and quorum whole after %v, containers healthy after %v", svc,
			heal.Round(time.Millisecond), healthy.Round(time.Millisecond))
		if heal > row.heal {
			row.heal, longest = heal, svc
		}
		row.healthy = max(row.healthy, healthy)
	}
	row.note = fmt.Sprintf("%.0fs in all; HEAL, HEALTHY: the slowest node (%s), from its restart", time.Since(began).Seconds(), longest)
	return time.Time{}
}

func brokerService(id int32) string     { return fmt.Sprintf("broker-%d", id-100) }
func controllerService(id int32) string { return fmt.Sprintf("controller-%d", id) }

// docker runs `docker args...` with the last argument a service name,
// replaced by its container id; it fails the test on an error.
func (d *dockerChaos) docker(args ...string) {
	d.t.Helper()
	svc := args[len(args)-1]
	id, err := d.c.Container(svc)
	if err != nil {
		d.t.Fatal(err)
	}
	args = append(slices.Clone(args[:len(args)-1]), id)
	start := time.Now()
	if _, err := d.c.Docker(2*time.Minute, args...); err != nil {
		d.t.Fatal(err)
	}
	d.t.Logf("docker %s %s (%v)", strings.Join(args[:len(args)-1], " "), svc, time.Since(start).Round(time.Millisecond))
}

// waitState waits until the service's container is in state (exited,
// running).
func (d *dockerChaos) waitState(svc, state string) {
	d.t.Helper()
	id, err := d.c.Container(svc)
	if err != nil {
		d.t.Fatal(err)
	}
	harness.WaitFor(d.t, time.Minute, func() (bool, string) {
		out, err := d.c.Docker(30*time.Second, "inspect", "--format", "{{.State.Status}}", id)
		if err != nil {
			return false, err.Error()
		}
		got := strings.TrimSpace(out)
		return got == state, fmt.Sprintf("%s is %s, want %s", svc, got, state)
	})
}

// reaches reports whether the node in the container of service from
// reaches addr (host:port on the project's networks): `skein health` run
// there says "not answering" when it cannot connect (or resolve the name).
func (d *dockerChaos) reaches(from, addr string) (bool, error) {
	id, err := d.c.Container(from)
	if err != nil {
		return false, err
	}
	_, err = d.c.Docker(30*time.Second, "exec", id, "/skein", "health", "--bootstrap-server", addr, "--timeout", "2s")
	switch {
	case err == nil:
		return true, nil
	case strings.Contains(err.Error(), addr+": not answering"):
		return false, nil
	case strings.Contains(err.Error(), addr+": "): // answered, not ready
		return true, nil
	}
	return false, err
}

// mustReach fails the test unless the node of service from reaches addr
// (want) or does not (!want).
func (d *dockerChaos) mustReach(from, addr string, want bool) {
	d.t.Helper()
	got, err := d.reaches(from, addr)
	if err != nil {
		d.t.Fatalf("does %s reach %s? %v", from, addr, err)
	}
	if got != want {
		d.t.Fatalf("%s reaches %s: %v, want %v", from, addr, got, want)
	}
	d.t.Logf("%s reaches %s: %v, as it should", from, addr, got)
}

// dial connects to the broker's published port and sends ApiVersions.
func (d *dockerChaos) dial(id int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), dockerRequestTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", d.ports[id]))
	if err != nil {
		return err
	}
	conn.Close()
	_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, d.brokers[id])
	return err
}

// metadata asks broker id (and no other) for the metadata of every topic.
func (d *dockerChaos) metadata(id int32) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerRequestTimeout)
	defer cancel()
	resp, err := d.brokers[id].SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		return nil, fmt.Errorf("broker %d: metadata: %w", id, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// others returns the broker ids but not.
func (d *dockerChaos) others(not int32) []int32 {
	var ids []int32
	for id := range d.brokers {
		if id != not {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// leader returns the leader of partition p of the workload topic as the
// brokers but not see it, waiting until there is one.
func (d *dockerChaos) leader(p int32, not int32) int32 {
	d.t.Helper()
	leader := int32(-1)
	harness.WaitFor(d.t, dockerEffectTimeout, func() (bool, string) {
		var why []string
		for _, id := range d.others(not) {
			md, err := d.metadata(id)
			if err != nil {
				why = append(why, err.Error())
				continue
			}
			for _, mt := range md.Topics {
				if mt.Topic == nil || *mt.Topic != dockerTopic {
					continue
				}
				for _, mp := range mt.Partitions {
					if mp.Partition == p && mp.ErrorCode == 0 && mp.Leader >= 0 {
						leader = mp.Leader
						return true, ""
					}
				}
			}
			why = append(why, fmt.Sprintf("broker %d: no leader of %s/%d", id, dockerTopic, p))
		}
		return false, strings.Join(why, "; ")
	})
	return leader
}

// waitFenced waits until the other brokers see victim in no ISR and
// leading no partition: the controllers fenced it.
func (d *dockerChaos) waitFenced(victim int32) {
	d.t.Helper()
	harness.WaitFor(d.t, dockerEffectTimeout, func() (bool, string) {
		for _, id := range d.others(victim) {
			md, err := d.metadata(id)
			if err != nil {
				return false, err.Error()
			}
			for _, mt := range md.Topics {
				for _, mp := range mt.Partitions {
					if mp.Leader == victim || slices.Contains(mp.ISR, victim) {
						return false, fmt.Sprintf("broker %d: %s/%d: leader %d ISR %v", id, deref(mt.Topic), mp.Partition, mp.Leader, mp.ISR)
					}
				}
			}
		}
		return true, ""
	})
}

// whole reports whether the cluster is whole again: every broker answers
// and lists the three brokers, every partition of every topic has a
// leader and all its replicas in the ISR (in every broker's view), and
// the controller quorum has three voters and a leader that every other
// voter fetched from within dockerQuorumContact and was caught up with
// after since (a controller that restarted or reconnected before since
// took part in the quorum again).
func (d *dockerChaos) whole(since time.Time) (bool, string) {
	for _, id := range d.others(0) {
		md, err := d.metadata(id)
		if err != nil {
			return false, err.Error()
		}
		if len(md.Brokers) != len(d.brokers) {
			return false, fmt.Sprintf("broker %d lists %d brokers", id, len(md.Brokers))
		}
		found := false
		for _, mt := range md.Topics {
			if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
				return false, fmt.Sprintf("broker %d: %s: %v", id, deref(mt.Topic), err)
			}
			found = found || deref(mt.Topic) == dockerTopic
			for _, mp := range mt.Partitions {
				if mp.Leader < 0 || len(mp.ISR) != len(mp.Replicas) ||
					(deref(mt.Topic) == dockerTopic && len(mp.Replicas) != 3) {
					return false, fmt.Sprintf("broker %d: %s/%d: leader %d replicas %v ISR %v",
						id, deref(mt.Topic), mp.Partition, mp.Leader, mp.Replicas, mp.ISR)
				}
			}
		}
		if !found {
			return false, fmt.Sprintf("broker %d does not know %s", id, dockerTopic)
		}
	}
	q, err := d.describeQuorum(0)
	if err != nil {
		return false, err.Error()
	}
	now := time.Now()
	for _, v := range q.CurrentVoters {
		if v.ReplicaID == q.LeaderID {
			continue
		}
		fetched, caughtUp := time.UnixMilli(v.LastFetchTimestamp), time.UnixMilli(v.LastCaughtUpTimestamp)
		if v.LastFetchTimestamp < 0 || now.Sub(fetched) > dockerQuorumContact ||
			v.LastCaughtUpTimestamp < 0 || caughtUp.Before(since.Truncate(time.Millisecond)) {
			ago := func(ms int64, at time.Time) string {
				if ms <= 0 {
					return "never"
				}
				return now.Sub(at).Round(time.Millisecond).String() + " ago"
			}
			return false, fmt.Sprintf("controller %d: last fetch from the leader %d %s, caught up %s (want after %v ago)",
				v.ReplicaID, q.LeaderID, ago(v.LastFetchTimestamp, fetched), ago(v.LastCaughtUpTimestamp, caughtUp),
				now.Sub(since).Round(time.Millisecond))
		}
	}
	if len(q.CurrentVoters) != 3 {
		return false, fmt.Sprintf("%d voters", len(q.CurrentVoters))
	}
	return true, ""
}

// waitWhole waits until whole(since) holds and returns how long it took;
// it logs why it was not at first, if it was not.
func (d *dockerChaos) waitWhole(what string, since time.Time, timeout time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	first := ""
	if err := harness.Poll(timeout, func() (bool, string) {
		ok, why := d.whole(since)
		if !ok && first == "" {
			first = why
		}
		return ok, why
	}); err != nil {
		d.t.Fatalf("%s: the cluster is not whole: %v", what, err)
	}
	took := time.Since(start)
	if first != "" {
		d.t.Logf("%s: whole after %v; at first: %s", what, took.Round(time.Millisecond), first)
	}
	return took
}

// describeQuorum asks the brokers but not, in turn, to describe the
// metadata quorum (they forward it to the active controller).
func (d *dockerChaos) describeQuorum(not int32) (kmsg.DescribeQuorumResponseTopicPartition, error) {
	var errs []error
	for _, id := range d.others(not) {
		ctx, cancel := context.WithTimeout(context.Background(), dockerRequestTimeout)
		resp, err := d.brokers[id].SeedBrokers()[0].Request(ctx, dockerQuorumRequest())
		cancel()
		if err == nil {
			q := resp.(*kmsg.DescribeQuorumResponse)
			err = kerr.ErrorForCode(q.ErrorCode)
			if err == nil && (len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1) {
				err = errors.New("no quorum partition in the answer")
			}
			if err == nil {
				p := q.Topics[0].Partitions[0]
				if err = kerr.ErrorForCode(p.ErrorCode); err == nil {
					return p, nil
				}
			}
		}
		errs = append(errs, fmt.Errorf("describe quorum through broker %d: %w", id, err))
	}
	return kmsg.DescribeQuorumResponseTopicPartition{}, errors.Join(errs...)
}

// quorumLeader waits until the quorum has a leader other than not (0:
// any) and returns it.
func (d *dockerChaos) quorumLeader(not int32) int32 {
	d.t.Helper()
	var leader int32
	harness.WaitFor(d.t, dockerEffectTimeout, func() (bool, string) {
		q, err := d.describeQuorum(0)
		if err != nil {
			return false, err.Error()
		}
		leader = q.LeaderID
		if leader < 1 || leader == not {
			return false, fmt.Sprintf("quorum leader %d (term %d)", leader, q.LeaderEpoch)
		}
		return true, ""
	})
	return leader
}

func dockerQuorumRequest() *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = metalog.Topic
	t.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = []kmsg.DescribeQuorumRequestTopic{t}
	return req
}

// waitAcked waits until the history holds n more acknowledgements than
// when it was called.
func waitAcked(t *testing.T, history string, n int, timeout time.Duration) {
	t.Helper()
	f, err := os.Open(history)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Only what comes after the current end counts.
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	marker := []byte(`"type":"ok"`)
	var got int
	var partial []byte
	buf := make([]byte, 256<<10)
	harness.WaitFor(t, timeout, func() (bool, string) {
		for {
			k, err := f.Read(buf)
			data := append(partial, buf[:k]...)
			// Count whole lines only: a marker may be cut in two.
			end := strings.LastIndexByte(string(data), '\n') + 1
			got += strings.Count(string(data[:end]), string(marker))
			partial = append(partial[:0], data[end:]...)
			if err != nil || k == 0 {
				break
			}
		}
		return got >= n, fmt.Sprintf("%d of %d acknowledgements after the heal", got, n)
	})
}

// summary prints one row per fault: how long the fault took to show and
// to heal, what the workload checked, and what replicas verify said.
func (d *dockerChaos) summary(total time.Duration) {
	if len(d.rows) == 0 {
		return
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUND\tFAULT\tTARGET\tEFFECT-S\tHEAL-S\tHEALTHY-S\tRECORDS\tINDETERMINATE\tANOMALIES\tREPLICAS\tNOTE")
	secs := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", d.Seconds())
	}
	for _, r := range d.rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.round, r.fault, r.target,
			secs(r.effect), secs(r.heal), secs(r.healthy), r.acked, r.indeterminate, r.anomalies, r.replicas, r.note)
	}
	_ = tw.Flush()
	if err := os.WriteFile(filepath.Join(d.dir, "summary.txt"), []byte(b.String()), 0o644); err != nil {
		d.t.Error(err)
	}
	d.t.Logf("faults across containers, %v in all (EFFECT: fault until it showed; HEAL: heal until every ISR full and the quorum whole; HEALTHY: until every container's health check passed; RECORDS: acknowledged, checked by skein verify workload):\n%s",
		total.Round(time.Second), b.String())
}
