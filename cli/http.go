package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/controller/image"

	"github.com/skein-io/skein/internal/console"
	"github.com/skein-io/skein/internal/heaptune"
	"github.com/skein-io/skein/internal/httpserver"
)

// pprofFlag is --pprof: Go's profiling endpoints, off by default.
func pprofFlag() cli.Flag {
	return stringFlag("pprof", "serve Go's pprof profiles (/debug/pprof/) on this host:port (the same as --http-listen: on that server); empty: off", "")
}

// httpListenFlag is --http-listen: the node's HTTP endpoint (/metrics,
// /healthz, /readyz), off unless given a default.
func httpListenFlag(value string) cli.Flag {
	return stringFlag("http-listen", "serve the web console (/), Prometheus /metrics, /healthz and /readyz over HTTP on this host:port; empty: off", value)
}

// consoleReadOnlyFlag is --console-read-only.
func consoleReadOnlyFlag() cli.Flag {
	return boolFlag("console-read-only", "leave the create-topic form out of the web console (it is read-only then)", false)
}

// metricsPerPartitionFlag is --metrics-per-partition.
func metricsPerPartitionFlag() cli.Flag {
	return boolFlag("metrics-per-partition", "also export per-partition metrics (log size, segments, offsets, under-replication) for every hosted replica", false)
}

// startHTTP serves the node's HTTP endpoint on --http-listen (nil when
// it is empty) with the process's metrics and the readiness checks, and
// Go's profiles too when --pprof names the same address (then
// servePprofFlag does nothing).
func startHTTP(c *cli.Context, reg *prometheus.Registry, checks []httpserver.Check, log hclog.Logger) (*httpserver.Server, error) {
	addr := c.String("http-listen")
	if addr == "" {
		return nil, nil
	}
	srv, err := httpserver.Start(httpserver.Config{
		Addr: addr, Gatherer: reg, Checks: checks, Pprof: c.String("pprof") == addr, Logger: log.Named("http"),
	})
	if err != nil {
		return nil, fmt.Errorf("--http-listen %s: %w", addr, err)
	}
	return srv, nil
}

// serveConsole adds the web console to srv (nothing when srv is nil);
// stop closes its cluster clients and is never nil.
func serveConsole(srv *httpserver.Server, cfg console.Config, log hclog.Logger) (stop func(), err error) {
	if srv == nil {
		return func() {}, nil
	}
	cfg.Logger = log.Named("console")
	con, err := console.New(cfg)
	if err != nil {
		return nil, err
	}
	con.Register(srv.Mux())
	log.Info("serving the web console", "url", srv.URL())
	return con.Close, nil
}

// consoleConfig is console.DefaultConfig for node, reading img, with
// --console-read-only.
func consoleConfig(c *cli.Context, node string, img func() *image.Image) console.Config {
	cfg := console.DefaultConfig()
	cfg.Node, cfg.Image, cfg.ReadOnly = node, img, c.Bool("console-read-only")
	return cfg
}

// servePprofFlag serves --pprof on its own listener unless it is off or
// --http-listen's address (startHTTP serves it there); stop is never nil.
func servePprofFlag(c *cli.Context, log hclog.Logger) (stop func(), err error) {
	addr := c.String("pprof")
	if addr == "" || addr == c.String("http-listen") {
		return func() {}, nil
	}
	return servePprof(addr, log)
}

// servePprof serves /debug/pprof/ on addr until the returned stop is
// called. Profiles are for operators on a trusted network: bind it to
// loopback.
func servePprof(addr string, log hclog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "error", err)
		}
	}()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// heapHeadroomFlag sets how much the heap may grow between collections
// while the live heap is small (internal/heaptune).
func heapHeadroomFlag() cli.Flag {
	return stringFlag("heap-headroom", "the Go heap may grow by at least this much between garbage collections (fewer collections on a small heap; ignored when GOGC is set; 0: Go's default)", "64MiB")
}

// keepHeapHeadroom applies --heap-headroom until ctx ends.
func keepHeapHeadroom(ctx context.Context, c *cli.Context, log hclog.Logger) error {
	s := c.String("heap-headroom")
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("--heap-headroom %q: %w (a size such as 64MiB, or 0)", s, err)
	}
	heaptune.Keep(ctx, n, log)
	return nil
}
