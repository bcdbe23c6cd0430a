package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestCompose runs deploy/docker-compose.yml (3 controllers, 3 brokers in
// containers of the FROM scratch image, each broker with an INTERNAL
// listener for the containers' network and an EXTERNAL one published on
// the host) under a project and host ports of its own: every container
// gets healthy (`skein health`), a client on the host is given the
// brokers' published addresses, each broker's HTTP endpoint published on
// the host answers /readyz and serves its /metrics, and records produced
// through them (RF 3, acks=all, idempotent) are read back, in order and
// complete. Skipped
// without Docker (failed instead under CI=true on a machine with docker).
func TestCompose(t *testing.T) {
	c := harness.StartCompose(t, harness.ComposeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Through any published port: the three brokers at their published
	// addresses, never at the containers' names.
	var want []string
	for i, p := range c.HostPorts {
		want = append(want, fmt.Sprintf("%d@127.0.0.1:%d", 101+i, p))
	}
	for _, p := range c.HostPorts {
		cl := c.Client(t, kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", p)))
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			t.Fatalf("metadata through port %d: %v", p, err)
		}
		var got []string
		for _, b := range md.Brokers {
			got = append(got, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("metadata through port %d: brokers %v, want %v", p, got, want)
		}
	}

	// Each broker's HTTP endpoint, published on the host: ready, and
	// its /metrics has its own series.
	for i, p := range c.HTTPHostPorts {
		base := fmt.Sprintf("http://127.0.0.1:%d", p)
		want := fmt.Sprintf(`skein_broker_partitions{node_id="%d"}`, 101+i)
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			code, body, err := httpGet(base + "/readyz")
			if err != nil || code != http.StatusOK {
				return false, fmt.Sprintf("%s/readyz: %d %q %v", base, code, body, err)
			}
			code, body, err = httpGet(base + "/metrics")
			if err != nil || code != http.StatusOK || !strings.Contains(body, want) {
				return false, fmt.Sprintf("%s/metrics: %d %v, no %s", base, code, err, want)
			}
			return true, ""
		})
	}

	const topic, n = "compose", 3000
	adm := kadm.NewClient(c.Client(t))
	created, err := adm.CreateTopic(ctx, 3, 3, nil, topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	ledger := &harness.Ledger{}
	produceNumbered(t, c.Client(t, kgo.DefaultProduceTopic(topic)), topic, "c", n, ledger)
	harness.Verify(c.ReadAll(t, topic, 30*time.Second), ledger.Acks()).Check(t)
}

// httpGet fetches url: the status code and the body.
func httpGet(url string) (int, string, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
