package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// chromiumBinary returns the path of Chromium. Without it the test is
// skipped, except under CI=true, where it fails: CI installs it.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not on PATH; CI must install it (apt-get install chromium)")
	}
	t.Skip("chromium is not on PATH; install it (apt-get install chromium) to run this test")
	return ""
}

// browser starts headless Chromium for the test; tabs are made with
// chromedp.NewContext on what it returns.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// domRow is a table row as the browser has it: id, data-* attributes
// and text.
type domRow struct {
	ID   string            `json:"id"`
	Data map[string]string `json:"data"`
	Text string            `json:"text"`
}

// tab is one browser tab showing a console page.
type tab struct {
	t   *testing.T
	ctx context.Context
	url string
}

// openTab opens url in a new tab and waits until selector is there.
func openTab(t *testing.T, browser context.Context, url, selector string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab, for as long as ctx lives
		t.Fatalf("open a tab: %v", err)
	}
	runCtx, stop := context.WithTimeout(ctx, 15*time.Second)
	defer stop()
	if err := chromedp.Do(runCtx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(selector))); err != nil {
		t.Fatalf("load %s (waiting for %s): %v", url, selector, err)
	}
	return &tab{t: t, ctx: ctx, url: url}
}

// rows reads the rows matching selector from the tab's current DOM.
func (tb *tab) rows(selector string) ([]domRow, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	js := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(r => ({id: r.id, data: Object.assign({}, r.dataset), text: r.innerText}))`, selector)
	return chromedp.Run(ctx, chromedp.Evaluate[[]domRow](js))
}

// waitRows waits until the rows matching selector satisfy cond, in the
// page as it is (its script refreshes it; the test never reloads).
func (tb *tab) waitRows(timeout time.Duration, selector string, cond func([]domRow) (bool, string)) []domRow {
	tb.t.Helper()
	var last []domRow
	harness.WaitFor(tb.t, timeout, func() (bool, string) {
		rows, err := tb.rows(selector)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", tb.url, err)
		}
		last = rows
		ok, why := cond(rows)
		return ok, fmt.Sprintf("%s: %s", tb.url, why)
	})
	return last
}

func sortedIDs(ids []int32) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	parts := make([]string, len(s))
	for i, id := range s {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}

// sortedList sorts a comma-separated list of ids.
func sortedList(s string) string {
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			ids = append(ids, int32(n))
		}
	}
	return sortedIDs(ids)
}

// mustGet is httpGet (compose_test.go) that wants a 200.
func mustGet(t *testing.T, url string) string {
	t.Helper()
	code, body, err := httpGet(url)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, code, err)
	}
	return body
}

// TestConsole drives the web console in headless Chromium against a
// cluster of 1 controller and 3 brokers: a topic of 3 partitions (RF 3)
// with 4, 5 and 6 records, and a group whose member read them all,
// committed, and stays in the group while 2, 3 and 4 more arrive (lag 2,
// 3, 4). The overview, the topic page and the group page of broker 101
// show the brokers, ISRs and lags that kadm reports; the topics page's
// form creates a topic. Then broker 103 is
// stopped: without a reload, the overview shows it not alive and the
// topic page every partition under-replicated within seconds.
func TestConsole(t *testing.T) {
	chrome := chromiumBinary(t)
	const topic, group = "console-orders", "console-readers"
	c := harness.StartCluster(t, harness.Options{Brokers: 3, HTTP: true})
	retention := "3600000"
	createTopic(t, c, topic, 3, 3, map[string]*string{"retention.ms": &retention})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(counts map[int32]int) {
		for p, n := range counts {
			for i := range n {
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("produce to partition %d: %v", p, err)
				}
			}
		}
	}
	produce(map[int32]int{0: 4, 1: 5, 2: 6})
	reader := c.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ClientID("console-reader"),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for read := 0; read < 15; {
		fs := reader.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of 15 records: %v", read, err)
		}
		read += fs.NumRecords()
	}
	if err := reader.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	produce(map[int32]int{0: 2, 1: 3, 2: 4}) // the reader polls no more: lag 2, 3, 4

	// What kadm reports: the brokers, each partition's leader and ISR,
	// the group's lag.
	adm := kadm.NewClient(cl)
	wantLag := map[int32]int64{0: 2, 1: 3, 2: 4}
	var lags kadm.DescribedGroupLag
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		l, err := adm.Lag(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		lags = l[group]
		for p, want := range wantLag {
			if got, ok := lags.Lag.Lookup(topic, p); !ok || got.Lag != want || lags.State != "Stable" {
				return false, fmt.Sprintf("kadm: group %s, partition %d lag %d, want %d", lags.State, p, got.Lag, want)
			}
		}
		return true, ""
	})
	meta, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	brokerIDs := meta.Brokers.NodeIDs()
	slices.Sort(brokerIDs)

	b101 := "http://" + c.Brokers[0].HTTPAddr

	// The first view is rendered on the server: without any script, the
	// pages already hold the data.
	for path, want := range map[string]string{
		"/":                  `id="broker-103"`,
		"/topics":            `id="topic-` + topic + `"`,
		"/topics/" + topic:   `id="partition-2"`,
		"/groups":            `id="group-` + group + `"`,
		"/groups/" + group:   `id="offset-` + topic + `-2"`,
		"/static/console.js": "setTimeout(tick",
	} {
		if body := mustGet(t, b101+path); !strings.Contains(body, want) {
			t.Fatalf("GET %s: no %s in:\n%s", path, want, body)
		}
	}
	// The controller's console sees the same brokers and the quorum, asked
	// of itself.
	var ov struct {
		Brokers []struct {
			ID    int32 `json:"id"`
			Alive bool  `json:"alive"`
		} `json:"brokers"`
		Quorum *struct {
			LeaderID int32 `json:"leader_id"`
		} `json:"quorum"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal([]byte(mustGet(t, "http://"+c.Controllers[0].HTTPAddr+"/api/overview")), &ov); err != nil {
		t.Fatal(err)
	}
	if len(ov.Brokers) != 3 || ov.Quorum == nil || ov.Quorum.LeaderID != 1 || len(ov.Errors) > 0 {
		t.Fatalf("controller 1's /api/overview: %+v", ov)
	}
	// A broker asks the quorum through the cluster (DescribeQuorum,
	// forwarded to the controllers).
	ov.Quorum, ov.Errors = nil, nil
	if err := json.Unmarshal([]byte(mustGet(t, b101+"/api/overview")), &ov); err != nil {
		t.Fatal(err)
	}
	if len(ov.Brokers) != 3 || ov.Quorum == nil || ov.Quorum.LeaderID != 1 || len(ov.Errors) > 0 {
		t.Fatalf("broker 101's /api/overview: %+v", ov)
	}

	br := browser(t, chrome)
	overview := openTab(t, br, b101+"/", "#brokers")
	overview.waitRows(10*time.Second, "#brokers tbody tr", func(rows []domRow) (bool, string) {
		var ids []string
		for _, r := range rows {
			if r.Data["alive"] != "true" {
				return false, fmt.Sprintf("row %s not alive: %q", r.ID, r.Text)
			}
			ids = append(ids, strings.TrimPrefix(r.ID, "broker-"))
		}
		if got := sortedList(strings.Join(ids, ",")); got != sortedIDs(brokerIDs) {
			return false, fmt.Sprintf("brokers %s, kadm says %s", got, sortedIDs(brokerIDs))
		}
		return true, ""
	})

	topicPage := openTab(t, br, b101+"/topics/"+topic, "#partitions")
	topicPage.waitRows(10*time.Second, "#partitions tbody tr", func(rows []domRow) (bool, string) {
		if len(rows) != 3 {
			return false, fmt.Sprintf("%d partition rows", len(rows))
		}
		for _, r := range rows {
			p, _ := strconv.Atoi(strings.TrimPrefix(r.ID, "partition-"))
			md := meta.Topics[topic].Partitions[int32(p)]
			if got, want := sortedList(r.Data["isr"]), sortedIDs(md.ISR); got != want {
				return false, fmt.Sprintf("partition %d ISR %s, kadm says %s", p, got, want)
			}
			if r.Data["leader"] != strconv.Itoa(int(md.Leader)) || r.Data["urp"] != "false" {
				return false, fmt.Sprintf("partition %d: leader %s urp %s, kadm says leader %d", p, r.Data["leader"], r.Data["urp"], md.Leader)
			}
		}
		return true, ""
	})

	groupPage := openTab(t, br, b101+"/groups/"+group, "#offsets")
	groupPage.waitRows(10*time.Second, "#offsets tbody tr", func(rows []domRow) (bool, string) {
		if len(rows) != 3 {
			return false, fmt.Sprintf("%d offset rows", len(rows))
		}
		for _, r := range rows {
			p, _ := strconv.Atoi(strings.TrimPrefix(r.ID, "offset-"+topic+"-"))
			want, _ := lags.Lag.Lookup(topic, int32(p))
			if r.Data["lag"] != strconv.FormatInt(want.Lag, 10) {
				return false, fmt.Sprintf("partition %d lag %s, kadm says %d", p, r.Data["lag"], want.Lag)
			}
		}
		return true, ""
	})
	groupPage.waitRows(10*time.Second, "#members tbody tr", func(rows []domRow) (bool, string) {
		if len(rows) != 1 || !strings.Contains(rows[0].Text, "console-reader") {
			return false, fmt.Sprintf("members %+v, want one console-reader", rows)
		}
		return true, ""
	})

	// A topic created with the topics page's form.
	created := "console-created"
	form := openTab(t, br, b101+"/topics", "#create-topic")
	submit := fmt.Sprintf(`(() => { const f = document.getElementById("create-topic");
		f.elements.name.value = %q; f.elements.partitions.value = "2"; f.elements.replication_factor.value = "3";
		f.submit(); return true; })()`, created)
	subCtx, subCancel := context.WithTimeout(form.ctx, 15*time.Second)
	if _, err := chromedp.Run(subCtx, chromedp.Evaluate[bool](submit)); err != nil {
		t.Fatalf("submit the create-topic form: %v", err)
	}
	if err := chromedp.Do(subCtx, chromedp.WaitReady(chromedp.CSS("#partition-1"))); err != nil {
		t.Fatalf("the created topic's page: %v", err)
	}
	subCancel()
	if td, err := adm.ListTopics(ctx, created); err != nil || td[created].Err != nil || len(td[created].Partitions) != 2 {
		t.Fatalf("topic %s created from the console: %v %+v", created, err, td[created])
	}

	// Broker 103 stops; the open pages notice on their own.
	stopped := c.Brokers[2]
	stopped.MustStop()
	stoppedAt := time.Now()
	overview.waitRows(10*time.Second, "#broker-"+strconv.Itoa(int(stopped.ID)), func(rows []domRow) (bool, string) {
		if len(rows) != 1 || rows[0].Data["alive"] != "false" {
			return false, fmt.Sprintf("broker %d rows %+v, want one not alive", stopped.ID, rows)
		}
		return true, ""
	})
	t.Logf("overview shows broker %d not alive %v after it stopped", stopped.ID, time.Since(stoppedAt).Round(time.Millisecond))
	topicPage.waitRows(10*time.Second, "#partitions tbody tr", func(rows []domRow) (bool, string) {
		for _, r := range rows {
			if r.Data["urp"] != "true" || strings.Contains(","+r.Data["isr"]+",", ","+strconv.Itoa(int(stopped.ID))+",") {
				return false, fmt.Sprintf("%s: urp %s, ISR %s", r.ID, r.Data["urp"], r.Data["isr"])
			}
		}
		return len(rows) == 3, fmt.Sprintf("%d rows", len(rows))
	})
	t.Logf("topic page shows every partition under-replicated %v after broker %d stopped", time.Since(stoppedAt).Round(time.Millisecond), stopped.ID)
}
