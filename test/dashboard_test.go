package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// dashboardPanel is what the test reads of a Grafana panel.
type dashboardPanel struct {
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Datasource *dashboardDS      `json:"datasource"`
	Targets    []dashboardTarget `json:"targets"`
	Panels     []dashboardPanel  `json:"panels"` // a collapsed row's
}

type dashboardDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardTarget struct {
	Expr       string       `json:"expr"`
	Datasource *dashboardDS `json:"datasource"`
}

// readDashboard parses deploy/grafana/skein.json and returns its panels,
// rows' nested panels flattened.
func readDashboard(t *testing.T) []dashboardPanel {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "skein.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string           `json:"title"`
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("skein.json: %v", err)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Query string `json:"query"`
	}) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Fatal("skein.json: no `datasource` template variable of type datasource over prometheus")
	}
	var all []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	// Label lists of aggregations and vector matching.
	promLabelLists = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// promKeywords are PromQL words that are not metric names.
var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true, "atan2": true,
}

// promMetricNames returns the metric names a PromQL expression selects:
// the identifiers left once strings, label matchers, ranges and label
// lists are taken out, except function and aggregation names (followed by
// a parenthesis), keywords, numbers and Grafana variables.
func promMetricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promLabelLists.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if loc[0] > 0 {
			prev := s[loc[0]-1]
			if prev == '$' || prev == '.' || (prev >= '0' && prev <= '9') {
				continue // a variable, or a number's exponent or unit
			}
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(word)] {
			continue
		}
		if !slices.Contains(names, word) {
			names = append(names, word)
		}
	}
	return names
}

// TestPromMetricNames: the extraction the dashboard test relies on.
func TestPromMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum(skein_broker_under_replicated_partitions)`:                                                            {"skein_broker_under_replicated_partitions"},
		`sum by (topic) (rate(skein_topic_bytes_in_total{topic=~"a.*", node_id!="1"}[$__rate_interval]))`:          {"skein_topic_bytes_in_total"},
		`histogram_quantile(0.99, sum by (api, le) (rate(skein_request_duration_seconds_bucket[5m])))`:             {"skein_request_duration_seconds_bucket"},
		`sum(rate(a_sum[1m])) / on (api) group_left (x) sum(rate(a_count[1m] offset 5m)) > 1e3 and b unless c > 0`: {"a_sum", "a_count", "b", "c"},
		`max by (node_id, state) (skein_controller_raft_state) > 0`:                                                {"skein_controller_raft_state"},
		`go_goroutines`: {"go_goroutines"},
	} {
		if got := promMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promMetricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

// familyHas reports whether the scraped families have the series name:
// a family of that name, or a histogram's or summary's _bucket, _sum or
// _count.
func familyHas(fams map[string]*dto.MetricFamily, name string) bool {
	if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f := fams[base]
		if f == nil || len(f.GetMetric()) == 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}

// TestDashboardMetricsExist: every expression of deploy/grafana/skein.json
// selects metrics that real nodes serve. A cluster of 3 controllers
// (voter contact and lag on the active one, leader contact on the others,
// snapshots every few entries) and 2 brokers with a replicated topic,
// traffic, a failed request and a group with committed offsets is
// scraped until every name the dashboard uses is in some node's /metrics
// (with a deadline: a name that never shows, say after a rename in the
// code, fails the test and is listed). It also checks the dashboard's
// shape: the rows it must have, a query in every panel, each through the
// datasource variable.
func TestDashboardMetricsExist(t *testing.T) {
	panels := readDashboard(t)
	var rows []string
	used := map[string][]string{} // metric name -> panels using it
	for _, p := range panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a target's datasource %+v, want uid ${datasource}", p.Title, tg.Datasource)
			}
			names := promMetricNames(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: no metric in %q", p.Title, tg.Expr)
			}
			for _, n := range names {
				used[n] = append(used[n], p.Title)
			}
		}
	}
	for _, want := range []string{"Cluster health", "Throughput", "Requests", "Replication", "Storage",
		"Consumer groups", "Controller", "Runtime"} {
		if !slices.Contains(rows, want) {
			t.Errorf("dashboard has no row %q (rows: %v)", want, rows)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	const topic, group = "dashboard", "dashboard-readers"
	c := harness.StartCluster(t, harness.Options{Controllers: 3, Brokers: 2, HTTP: true,
		ControllerArgs: []string{"--snapshot-threshold", "4", "--snapshot-interval", "100ms"}})
	createTopic(t, c, topic, 2, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := c.Client(t)
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	consumer := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < 20; {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 20: %v", got, err)
		}
		got += fs.NumRecords()
	}
	adm := kadm.NewClient(cl)
	// A failed request: the topic exists already (TOPIC_ALREADY_EXISTS).
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err == nil && resp.Err == nil {
		t.Fatalf("creating %s again succeeded", topic)
	}
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	offsets.Add(kadm.Offset{Topic: topic, Partition: 1, At: 0, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, group, offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}

	nodes := append(append([]*harness.Node(nil), c.Controllers...), c.Brokers...)
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		have := map[string]bool{}
		for _, n := range nodes {
			fams, err := n.Metrics()
			if err != nil {
				return false, err.Error()
			}
			for _, name := range names {
				if familyHas(fams, name) {
					have[name] = true
				}
			}
		}
		var missing []string
		for _, name := range names {
			if !have[name] {
				missing = append(missing, fmt.Sprintf("%s (panels %q)", name, used[name]))
			}
		}
		return len(missing) == 0, "not in any node's /metrics: " + strings.Join(missing, ", ")
	})
	t.Logf("%d metric names of %d panels found in the nodes' /metrics", len(names), len(panels))
}
