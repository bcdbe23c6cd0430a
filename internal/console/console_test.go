package console

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) (string, int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	return "127.0.0.1", int32(addr.Port)
}

// unreachableConsole serves testImage with every broker at an address
// nobody listens on: everything asked of the cluster fails.
func unreachableConsole(t *testing.T) (*httptest.Server, time.Duration) {
	t.Helper()
	img := testImage()
	host, port := closedAddr(t)
	for id, b := range img.Brokers {
		nb := *b
		nb.Host, nb.Port = host, port
		img.Brokers[id] = &nb
	}
	cfg := DefaultConfig()
	cfg.Node, cfg.Image, cfg.Timeout = "broker 1", func() *image.Image { return img }, time.Second
	con, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	mux := http.NewServeMux()
	con.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, cfg.Timeout
}

func get(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), time.Since(start)
}

// TestPagesWithoutCluster: with no broker reachable, every page still
// answers within the collection timeout, rendered from the image, with
// what failed listed on it.
func TestPagesWithoutCluster(t *testing.T) {
	srv, timeout := unreachableConsole(t)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/", []string{`id="broker-1" data-alive="false"`, "not alive: unreachable", "cluster-x", "served by broker 1", `id="count-urp">2<`, `class="errors"`}},
		{"/topics", []string{`id="topic-t" data-urp="2"`, `href="/topics/u"`, `class="errors"`}},
		{"/topics/t", []string{`id="partition-1" data-urp="true" data-isr="3,1" data-leader="3"`, `<span class="badge bad">offline</span>`, `class="errors"`}},
		{"/groups", []string{"No consumer groups.", `class="errors"`}},
		{"/groups/g", []string{"Consumer group <span id=\"group-name\">g</span>", `class="errors"`}},
	} {
		code, body, took := get(t, srv.URL+tc.path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", tc.path, code, body)
		}
		if took > timeout+time.Second {
			t.Errorf("GET %s took %v, more than the %v collection timeout", tc.path, took, timeout)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q in:\n%s", tc.path, w, body)
			}
		}
		if !strings.Contains(body, "<html") || !strings.Contains(body, `src="/static/console.js"`) {
			t.Errorf("GET %s: not a whole page", tc.path)
		}
		// The refresh gets the main part alone, from the same template.
		_, part, _ := get(t, srv.URL+tc.path+"?part=main")
		if strings.Contains(part, "<html") || !strings.Contains(part, "<h1>") {
			t.Errorf("GET %s?part=main: want the main part only, got:\n%s", tc.path, part)
		}
	}
}

func TestNotFoundAndStatic(t *testing.T) {
	srv, _ := unreachableConsole(t)
	if code, body, _ := get(t, srv.URL+"/topics/nope"); code != http.StatusNotFound || !strings.Contains(body, "topic nope: not found") {
		t.Fatalf("unknown topic: %d %s", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/api/topics/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown topic (api): %d", code)
	}
	if code, _, _ := get(t, srv.URL+"/no/such/page"); code != http.StatusNotFound {
		t.Fatalf("unknown path: %d", code)
	}
	for _, p := range []string{"/static/console.css", "/static/console.js"} {
		if code, body, _ := get(t, srv.URL+p); code != http.StatusOK || len(body) < 100 {
			t.Fatalf("%s: %d, %d bytes", p, code, len(body))
		}
	}
}

func TestAPIOverview(t *testing.T) {
	srv, _ := unreachableConsole(t)
	code, body, _ := get(t, srv.URL+"/api/overview")
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	var o Overview
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatal(err)
	}
	if o.ClusterID != "cluster-x" || o.MetadataOffset != 42 || o.ActiveController != 9 || len(o.Brokers) != 3 ||
		o.Counts.UnderReplicated != 2 || o.Quorum != nil || len(o.Errors) == 0 {
		t.Fatalf("overview: %+v", o)
	}
}

func TestQuorumFromResponse(t *testing.T) {
	now := time.UnixMilli(10_000)
	resp := kmsg.NewPtrDescribeQuorumResponse()
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = 1, 4, 100
	state := func(id int32, end, fetched int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset, rs.LastFetchTimestamp = id, end, fetched
		return rs
	}
	p.CurrentVoters = append(p.CurrentVoters, state(1, 100, 10_000), state(2, 97, 9_750), state(3, -1, -1))
	t0 := kmsg.NewDescribeQuorumResponseTopic()
	t0.Partitions = append(t0.Partitions, p)
	resp.Topics = append(resp.Topics, t0)
	q, err := QuorumFromResponse(resp, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Voter{
		{ID: 1, Role: "leader", LogEndOffset: 100, Lag: 0, LastContact: 0},
		{ID: 2, Role: "follower", LogEndOffset: 97, Lag: 3, LastContact: 250 * time.Millisecond},
		{ID: 3, Role: "follower", LogEndOffset: -1, Lag: -1, LastContact: -1},
	}
	if q.LeaderID != 1 || q.Term != 4 || len(q.Voters) != 3 {
		t.Fatalf("quorum %+v", q)
	}
	for i, v := range want {
		if q.Voters[i] != v {
			t.Errorf("voter %d: %+v, want %+v", i, q.Voters[i], v)
		}
	}
}

func post(t *testing.T, url string, form map[string]string, header map[string]string) (int, string) {
	t.Helper()
	vals := make([]string, 0, len(form))
	for k, v := range form {
		vals = append(vals, k+"="+v)
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(strings.Join(vals, "&")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestCreateTopicForm(t *testing.T) {
	srv, _ := unreachableConsole(t)
	if _, body, _ := get(t, srv.URL+"/topics"); !strings.Contains(body, `<form id="create-topic" method="post" action="/topics">`) {
		t.Fatalf("no create-topic form on /topics:\n%s", body)
	}
	if _, body, _ := get(t, srv.URL+"/topics?part=main"); strings.Contains(body, "create-topic") {
		t.Fatalf("the form is in the refreshed part (typing would be lost):\n%s", body)
	}
	for _, tc := range []struct {
		form map[string]string
		want string
	}{
		{map[string]string{"name": "a/b"}, "topic name &#34;a/b&#34;: use 1 to 249 letters"},
		{map[string]string{"name": "ok", "partitions": "0"}, "partitions &#34;0&#34;: want a number &gt;= 1"},
		{map[string]string{"name": "ok", "replication_factor": "x"}, "replication factor &#34;x&#34;"},
	} {
		code, body := post(t, srv.URL+"/topics", tc.form, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) || !strings.Contains(body, "<details open>") {
			t.Errorf("POST %v: %d, want 400 with %q in:\n%s", tc.form, code, tc.want, body)
		}
	}
	// A valid form reaches the cluster, which does not answer here.
	code, body := post(t, srv.URL+"/topics", map[string]string{"name": "fine", "partitions": "3"}, nil)
	if code == http.StatusSeeOther || !strings.Contains(body, "create topic fine:") {
		t.Errorf("POST to an unreachable cluster: %d\n%s", code, body)
	}
	// Another site's page cannot make a browser post it.
	if code, _ := post(t, srv.URL+"/topics", map[string]string{"name": "evil"}, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
}

func TestReadOnly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Image, cfg.ReadOnly = testImage, true
	con, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	mux := http.NewServeMux()
	con.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if _, body, _ := get(t, srv.URL+"/topics"); strings.Contains(body, "create-topic") {
		t.Fatal("read-only console shows the create-topic form")
	}
	if code, _ := post(t, srv.URL+"/topics", map[string]string{"name": "x"}, nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /topics on a read-only console: %d, want 405", code)
	}
}
