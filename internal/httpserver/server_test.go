package httpserver

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "skein_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var ready atomic.Bool
	srv, err := Start(Config{
		Addr:     "127.0.0.1:0",
		Gatherer: reg,
		Checks: []Check{
			{Name: "broker 101", Ready: func() (bool, string) { return ready.Load(), "fenced by the controller" }},
			{Ready: func() (bool, string) { return true, "" }},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := srv.URL()

	if code, body := get(t, base+"healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"readyz"); code != 503 || body != "not ready: broker 101: fenced by the controller\n" {
		t.Fatalf("/readyz before ready: %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, base+"readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz when ready: %d %q", code, body)
	}
	if code, body := get(t, base+"metrics"); code != 200 || !strings.Contains(body, "skein_test_total 3\n") {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	if code, _ := get(t, base+"debug/pprof/"); code != 404 {
		t.Fatalf("pprof served without Pprof: %d", code)
	}
	// More pages can be added while it runs (the console).
	srv.Mux().HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") })
	if code, body := get(t, base+"hello"); code != 200 || body != "hi" {
		t.Fatalf("/hello: %d %q", code, body)
	}
}

func TestPprof(t *testing.T) {
	srv, err := Start(Config{Addr: "127.0.0.1:0", Pprof: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if code, body := get(t, srv.URL()+"debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index: %d", code)
	}
	if code, _ := get(t, srv.URL()+"metrics"); code != 404 {
		t.Fatalf("/metrics served without a Gatherer: %d", code)
	}
	if code, _ := get(t, srv.URL()+"readyz"); code != 200 {
		t.Fatalf("/readyz without checks: %d", code)
	}
}
