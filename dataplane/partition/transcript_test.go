package partition

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
)

// Transcript tests of the ISR and high watermark rules (isrrule.go, hw.go),
// in the style of etcd-io/raft's interaction tests: each file under
// testdata/isr is a script of commands, each followed by "----" and the
// output it must produce; a blank line ends the output. Lines starting with
// # are comments. Run with -rewrite to regenerate the expected outputs
// (then read the diff).
//
// The script drives a leader (replica 1) through the pure rules only, with
// the same glue as isr.go: a fetch updates the follower's state and LEO,
// recomputes the high watermark and may propose an expansion; check
// proposes a shrink; commit and refuse end the pending change as the
// controller's answers do.
//
// Commands:
//
//	leader replicas=1,2,3 isr=1,2,3 [min-isr=N] [lag=D]  start (brokers registered at epoch 1)
//	append records=N                                     the leader appends N records
//	tick D                                               time passes
//	fetch replica=R offset=O [epoch=E]                   a follower fetch from O (its log end)
//	check                                                the periodic shrink check
//	commit | refuse                                      the controller's answer to the pending change
//	broker id=R [epoch=E] [fenced] [unregistered]        the image's registration of R
//	new-epoch                                            a new leader epoch starts at the log end

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the testdata transcripts")

func TestISRTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "isr", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runTranscript(t, file) })
	}
}

// transcriptBlock is one command with its expected output.
type transcriptBlock struct {
	pre      []string // comments and blank lines before the command
	cmd      string
	line     int
	expected string
}

func parseTranscript(t *testing.T, file string) []transcriptBlock {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var out []transcriptBlock
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		b := transcriptBlock{pre: pre, cmd: l, line: i + 1}
		pre = nil
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without ----", file, i+1)
		}
		i += 2
		var exp []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			exp = append(exp, lines[i])
		}
		i-- // the blank line (if any) belongs to the next block
		b.expected = strings.Join(exp, "\n")
		out = append(out, b)
	}
	return out
}

func runTranscript(t *testing.T, file string) {
	blocks := parseTranscript(t, file)
	var m *isrModel
	var rewritten strings.Builder
	for _, b := range blocks {
		var got string
		if m == nil && !strings.HasPrefix(b.cmd, "leader ") {
			t.Fatalf("%s:%d: the first command must be leader", file, b.line)
		}
		if strings.HasPrefix(b.cmd, "leader ") {
			m = &isrModel{}
		}
		got, err := m.run(b.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", file, b.line, b.cmd, err)
		}
		for _, p := range b.pre {
			rewritten.WriteString(p + "\n")
		}
		rewritten.WriteString(b.cmd + "\n----\n" + got + "\n")
		if !*rewrite && got != b.expected {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, b.line, b.cmd, got, b.expected)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// isrModel is a leader (replica 1) as the ISR rules see it.
type isrModel struct {
	start, now        time.Time
	replicas, isr     []int32
	minISR            int
	lag               time.Duration
	leo, hw, epochBeg int64
	followers         map[int32]*followerState
	followerLEO       map[int32]int64
	brokers           map[int32]*image.Broker
	pending           *isrProposal
	retryAfter        time.Time
}

const modelLeader = 1

// args parses key=value words (a bare word is key=true).
func args(words []string) map[string]string {
	out := map[string]string{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			v = "true"
		}
		out[k] = v
	}
	return out
}

func ids(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, int32(n))
	}
	return out, nil
}

func intArg(a map[string]string, k string, def int64) (int64, error) {
	v, ok := a[k]
	if !ok {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

func (m *isrModel) view() isrView {
	return isrView{Now: m.now, LocalID: modelLeader, Replicas: m.replicas, ISR: m.isr, Followers: m.followers,
		FollowerLEO: m.followerLEO, LeaderLEO: m.leo, HighWatermark: m.hw, LeaderEpochStartOffset: m.epochBeg,
		LagMax: m.lag, Brokers: m.brokers, Pending: m.pending != nil, RetryAfter: m.retryAfter}
}

// follower is followerLocked: the state, created caught up now.
func (m *isrModel) follower(r int32) *followerState {
	f := m.followers[r]
	if f == nil {
		f = &followerState{brokerEpoch: -1, lastCaughtUp: m.now}
		m.followers[r] = f
	}
	return f
}

// advance recomputes the high watermark and reports a move.
func (m *isrModel) advance(out *[]string) {
	maximal := m.isr
	if m.pending != nil {
		maximal = m.pending.Maximal
	}
	hw, moved := highWatermark(hwInput{Current: m.hw, LocalID: modelLeader, LocalLEO: m.leo, CommittedISR: m.isr,
		MaximalISR: maximal, FollowerLEO: m.followerLEO, MinInsyncReplicas: m.minISR})
	if moved {
		*out = append(*out, fmt.Sprintf("hw %d -> %d", m.hw, hw))
		m.hw = hw
	}
}

func (m *isrModel) propose(pr *isrProposal, out *[]string) {
	if pr == nil {
		return
	}
	m.pending = pr
	if pr.Shrink {
		*out = append(*out, fmt.Sprintf("propose shrink: isr %v, out of sync %v", pr.Proposed, pr.OutOfSync))
	} else {
		*out = append(*out, fmt.Sprintf("propose expand: isr %v, added %d", pr.Proposed, pr.Added))
	}
}

func (m *isrModel) run(cmd string) (string, error) {
	words := strings.Fields(cmd)
	a := args(words[1:])
	var out []string
	switch words[0] {
	case "leader":
		var err error
		if m.replicas, err = ids(a["replicas"]); err != nil {
			return "", err
		}
		if m.isr, err = ids(a["isr"]); err != nil {
			return "", err
		}
		minISR, err := intArg(a, "min-isr", 1)
		if err != nil {
			return "", err
		}
		m.minISR = int(minISR)
		m.lag = 10 * time.Second
		if v, ok := a["lag"]; ok {
			if m.lag, err = time.ParseDuration(v); err != nil {
				return "", err
			}
		}
		m.start = time.UnixMilli(1_700_000_000_000)
		m.now = m.start
		m.followers, m.followerLEO, m.brokers = map[int32]*followerState{}, map[int32]int64{}, map[int32]*image.Broker{}
		for _, r := range m.replicas {
			m.brokers[r] = &image.Broker{ID: r, Epoch: 1}
		}
		m.newEpoch()
	case "append":
		n, err := intArg(a, "records", 1)
		if err != nil {
			return "", err
		}
		m.leo += n
		m.advance(&out)
	case "tick":
		if len(words) != 2 {
			return "", fmt.Errorf("tick takes a duration")
		}
		d, err := time.ParseDuration(words[1])
		if err != nil {
			return "", err
		}
		m.now = m.now.Add(d)
	case "fetch":
		r, err := intArg(a, "replica", -1)
		if err != nil {
			return "", err
		}
		off, err := intArg(a, "offset", 0)
		if err != nil {
			return "", err
		}
		epoch, err := intArg(a, "epoch", -1)
		if err != nil {
			return "", err
		}
		if !slices.Contains(m.replicas, int32(r)) || r == modelLeader {
			return "", fmt.Errorf("replica %d is not a follower", r)
		}
		f := m.follower(int32(r))
		*f = f.fetched(m.now, off, m.leo, epoch)
		m.followerLEO[int32(r)] = off
		m.advance(&out)
		m.propose(expandISR(m.view(), int32(r)), &out)
	case "check":
		for _, r := range m.isr {
			if r != modelLeader {
				m.follower(r)
			}
		}
		m.propose(shrinkISR(m.view()), &out)
	case "commit":
		if m.pending == nil {
			return "", fmt.Errorf("nothing pending")
		}
		m.isr, m.pending = m.pending.Proposed, nil
		for _, r := range m.isr {
			if r != modelLeader {
				m.follower(r)
			}
		}
		m.advance(&out)
	case "refuse":
		if m.pending == nil {
			return "", fmt.Errorf("nothing pending")
		}
		// As handleISRResponse: the high watermark is recomputed at the
		// next fetch, not here.
		m.pending, m.retryAfter = nil, m.now.Add(isrRetryBackoff)
	case "broker":
		r, err := intArg(a, "id", -1)
		if err != nil {
			return "", err
		}
		if a["unregistered"] == "true" {
			delete(m.brokers, int32(r))
			break
		}
		epoch, err := intArg(a, "epoch", 1)
		if err != nil {
			return "", err
		}
		m.brokers[int32(r)] = &image.Broker{ID: int32(r), Epoch: epoch, Fenced: a["fenced"] == "true"}
	case "new-epoch":
		m.newEpoch()
	default:
		return "", fmt.Errorf("unknown command %q", words[0])
	}
	out = append(out, m.state())
	return strings.Join(out, "\n"), nil
}

// newEpoch is resetFollowersLocked at a new leader epoch.
func (m *isrModel) newEpoch() {
	m.epochBeg = m.leo
	clear(m.followerLEO)
	clear(m.followers)
	m.pending, m.retryAfter = nil, time.Time{}
	for _, r := range m.isr {
		if r != modelLeader {
			m.follower(r)
		}
	}
}

// state prints the leader's view: time, log end, high watermark, epoch
// start, ISR, pending change, and per follower its LEO and caught-up time.
func (m *isrModel) state() string {
	pending := "-"
	if m.pending != nil {
		pending = fmt.Sprint(m.pending.Proposed)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "t=%v leo=%d hw=%d epoch-start=%d isr=%v pending=%s", m.now.Sub(m.start), m.leo, m.hw,
		m.epochBeg, m.isr, pending)
	for _, r := range slices.Sorted(maps.Keys(m.followers)) {
		f := m.followers[r]
		leo := "?"
		if v, ok := m.followerLEO[r]; ok {
			leo = strconv.FormatInt(v, 10)
		}
		fmt.Fprintf(&b, "\n  %d: leo=%s caught-up=%v broker-epoch=%d", r, leo, f.lastCaughtUp.Sub(m.start), f.brokerEpoch)
	}
	return b.String()
}
