package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/test/harness"
)

// kcatBinary returns the path of kcat (or kafkacat). Without it the test
// is skipped, except under CI=true, where it fails: CI installs kcat.
func kcatBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("kcat (or kafkacat) is not on PATH; CI must install it (apt-get install kcat)")
	}
	t.Skip("kcat (or kafkacat) is not on PATH; install it to run this test")
	return ""
}

var librdkafkaVersion = regexp.MustCompile(`librdkafka (\d+)\.(\d+)`)

// kcatSupportsIdempotence reports whether kcat's librdkafka (>= 1.0) has
// enable.idempotence.
func kcatSupportsIdempotence(t *testing.T, kcat string) bool {
	t.Helper()
	res := harness.RunCommand(t, 10*time.Second, nil, kcat, "-V")
	m := librdkafkaVersion.FindStringSubmatch(res.Stdout + res.Stderr)
	if m == nil {
		t.Logf("cannot read the librdkafka version from kcat -V: %q", res.Stdout+res.Stderr)
		return false
	}
	for _, line := range strings.Split(res.Stdout+res.Stderr, "\n") {
		if strings.HasPrefix(line, "Version") {
			t.Logf("kcat %s", line)
		}
	}
	major, _ := strconv.Atoi(m[1])
	return major >= 1
}

// TestKcatProduceConsume checks the cluster against librdkafka through
// kcat: metadata listing, 100k lines produced (plain and idempotent) and
// read back in order, and kcat-produced records read by franz-go.
func TestKcatProduceConsume(t *testing.T) {
	const lines = 100_000
	kcat := kcatBinary(t)
	c := harness.StartCluster(t, harness.Options{})
	b := c.Bootstrap()

	res := harness.RunCommand(t, 30*time.Second, nil, kcat, "-L", "-b", b)
	if res.Err != nil {
		t.Fatalf("kcat -L: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	if want := fmt.Sprintf("broker %d at %s", c.Brokers[0].ID, c.Brokers[0].Addr); !strings.Contains(res.Stdout, want) {
		t.Errorf("kcat -L lacks %q:\n%s", want, res.Stdout)
	}

	runs := []struct {
		topic string
		extra []string
	}{{topic: "kcat-plain"}}
	if kcatSupportsIdempotence(t, kcat) {
		runs = append(runs, struct {
			topic string
			extra []string
		}{topic: "kcat-idempotent", extra: []string{"-X", "enable.idempotence=true"}})
	} else {
		t.Log("kcat's librdkafka predates enable.idempotence; skipping the idempotent run")
	}

	for _, run := range runs {
		t.Run(run.topic, func(t *testing.T) {
			createTopic(t, c, run.topic, 3, 1, nil)
			var in strings.Builder
			for i := range lines {
				in.WriteString(harness.Value("kcat", int64(i)))
				in.WriteByte('\n')
			}
			args := append([]string{"-P", "-b", b, "-t", run.topic}, run.extra...)
			res := harness.RunCommand(t, 2*time.Minute, strings.NewReader(in.String()), kcat, args...)
			if res.Err != nil || strings.Contains(res.Stderr, "Failed") || strings.Contains(res.Stderr, "ERROR") {
				t.Fatalf("kcat -P: %v\nstderr: %s", res.Err, res.Stderr)
			}

			// Read back with kcat: partition, offset and value per line.
			res = harness.RunCommand(t, 2*time.Minute, nil, kcat, "-C", "-b", b, "-t", run.topic, "-o", "beginning", "-e", "-q", "-f", `%p %o %s\n`)
			if res.Err != nil {
				t.Fatalf("kcat -C: %v\nstderr: %s", res.Err, res.Stderr)
			}
			viaKcat, err := parseKcatLines(res.Stdout)
			if err != nil {
				t.Fatalf("kcat -C output: %v", err)
			}
			report := harness.Verify(viaKcat, nil)
			report.Check(t)
			if report.Records != lines {
				t.Errorf("kcat read %d records, want %d", report.Records, lines)
			}

			// Read back with franz-go: the same records at the same offsets.
			viaFranz := c.ReadAll(t, run.topic, time.Minute)
			for p, recs := range viaKcat {
				if len(viaFranz[p]) != len(recs) {
					t.Errorf("partition %d: kcat read %d records, franz-go %d", p, len(recs), len(viaFranz[p]))
					continue
				}
				for i := range recs {
					if recs[i] != viaFranz[p][i] {
						t.Errorf("partition %d record #%d: kcat read %+v, franz-go %+v", p, i, recs[i], viaFranz[p][i])
						break
					}
				}
			}
		})
	}
}

// parseKcatLines parses "partition offset value" lines.
func parseKcatLines(out string) (map[int32][]harness.Stored, error) {
	stored := make(map[int32][]harness.Stored)
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		fields := strings.SplitN(line, " ", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("line %d: %q is not 'partition offset value'", i+1, line)
		}
		p, err1 := strconv.ParseInt(fields[0], 10, 32)
		o, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %d: %q: bad partition or offset", i+1, line)
		}
		stored[int32(p)] = append(stored[int32(p)], harness.Stored{Offset: o, Value: fields[2]})
	}
	return stored, nil
}
