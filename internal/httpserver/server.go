// Package httpserver is a node's HTTP endpoint (--http-listen): the
// operations surface next to the Kafka listener.
//
//	/metrics   Prometheus text format, from Config.Gatherer
//	/healthz   200 while the process runs
//	/readyz    200 when every Config.Checks says ready, else 503 with the
//	           first reason (one line per check that failed)
//	/debug/pprof/...  Go's profiles, when Config.Pprof is set
//
// Mux returns the ServeMux so more pages (the web console) can be added.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyFunc reports whether a node is ready to serve, and why not.
type ReadyFunc func() (ready bool, reason string)

// Check is one readiness check, named for the reason it gives (a node:
// "broker 101").
type Check struct {
	Name  string
	Ready ReadyFunc
}

// Config configures a Server.
type Config struct {
	// Addr is the host:port to listen on (port 0: any free port).
	Addr string
	// Gatherer is what /metrics serves; nil serves no /metrics.
	Gatherer prometheus.Gatherer
	// Checks are what /readyz asks, in order; none: always ready.
	Checks []Check
	// Pprof also serves Go's profiles under /debug/pprof/.
	Pprof  bool
	Logger hclog.Logger
}

// Server is a running HTTP endpoint.
type Server struct {
	cfg  Config
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// scrapeTimeout bounds one /metrics answer (a collector that asks other
// brokers for offsets is bounded by it too).
const scrapeTimeout = 10 * time.Second

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listener %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), ln: ln, done: make(chan struct{})}
	if cfg.Gatherer != nil {
		s.mux.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      promLogger{cfg.Logger},
			ErrorHandling: promhttp.ContinueOnError,
			Timeout:       scrapeTimeout,
		}))
	}
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("/readyz", s.readyz)
	if cfg.Pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Warn("http server stopped", "error", err)
		}
	}()
	cfg.Logger.Info("serving http", "addr", ln.Addr().String(), "metrics", cfg.Gatherer != nil, "pprof", cfg.Pprof)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://Addr/.
func (s *Server) URL() string { return "http://" + s.Addr() + "/" }

// Mux is the server's ServeMux: more handlers may be added while it runs.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Close stops the server, waiting up to 5 s for requests in progress.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var failed []string
	for _, c := range s.cfg.Checks {
		if ok, why := c.Ready(); !ok {
			if c.Name != "" {
				why = c.Name + ": " + why
			}
			failed = append(failed, why)
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(failed, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

// promLogger sends promhttp's errors to the node's log.
type promLogger struct{ log hclog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}
