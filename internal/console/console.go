package console

// Console: the HTTP handlers, pages rendered with html/template from the
// embedded templates/ and served with the embedded static/.

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/hashicorp/go-hclog"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the page templates, each parsed with layout.html.
var pages = []string{"overview", "topics", "topic", "groups", "group", "notfound"}

// Console serves the web console.
type Console struct {
	cfg       Config
	log       hclog.Logger
	collector *Collector
	templates map[string]*template.Template
}

// New returns a Console for cfg (validated); Register adds its handlers.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	col, err := NewCollector(cfg)
	if err != nil {
		return nil, err
	}
	templates, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &Console{cfg: cfg, log: cfg.Logger, collector: col, templates: templates}, nil
}

// Collector is the console's data collection.
func (c *Console) Collector() *Collector { return c.collector }

// Close closes the console's cluster clients. Idempotent.
func (c *Console) Close() { c.collector.Close() }

func parseTemplates() (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(pages))
	for _, p := range pages {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

// Register adds the console's handlers to mux: the pages, /api/ and
// /static/. The overview is "/" exactly; other paths there are not found.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", c.page("overview", "Overview", func(ctx context.Context, _ *http.Request) (any, error) {
		return c.collector.Overview(ctx), nil
	}))
	mux.HandleFunc("GET /topics", c.page("topics", "Topics", func(ctx context.Context, _ *http.Request) (any, error) {
		return c.collector.Topics(ctx), nil
	}))
	if !c.cfg.ReadOnly {
		mux.Handle("POST /topics", http.NewCrossOriginProtection().Handler(http.HandlerFunc(c.createTopic)))
	}
	mux.HandleFunc("GET /topics/{name}", c.page("topic", "Topic", func(ctx context.Context, r *http.Request) (any, error) {
		return c.collector.Topic(ctx, r.PathValue("name"))
	}))
	mux.HandleFunc("GET /groups", c.page("groups", "Consumer groups", func(ctx context.Context, _ *http.Request) (any, error) {
		return c.collector.Groups(ctx), nil
	}))
	mux.HandleFunc("GET /groups/{name...}", c.page("group", "Consumer group", func(ctx context.Context, r *http.Request) (any, error) {
		return c.collector.Group(ctx, r.PathValue("name"))
	}))
	mux.HandleFunc("GET /api/overview", c.api(func(ctx context.Context, _ *http.Request) (any, error) {
		return c.collector.Overview(ctx), nil
	}))
	mux.HandleFunc("GET /api/topics", c.api(func(ctx context.Context, _ *http.Request) (any, error) {
		return c.collector.Topics(ctx), nil
	}))
	mux.HandleFunc("GET /api/topics/{name}", c.api(func(ctx context.Context, r *http.Request) (any, error) {
		return c.collector.Topic(ctx, r.PathValue("name"))
	}))
	mux.HandleFunc("GET /api/groups", c.api(func(ctx context.Context, _ *http.Request) (any, error) {
		return c.collector.Groups(ctx), nil
	}))
	mux.HandleFunc("GET /api/groups/{name...}", c.api(func(ctx context.Context, r *http.Request) (any, error) {
		return c.collector.Group(ctx, r.PathValue("name"))
	}))
}

// collectFunc collects one page's data.
type collectFunc func(ctx context.Context, r *http.Request) (any, error)

// view is what layout.html renders.
type view struct {
	Title string
	// Nav is the page's section: overview, topics or groups.
	Nav           string
	RefreshMillis int64
	Node          string
	// CanCreate shows the create-topic form (not Config.ReadOnly); Form
	// is what was posted, with its error.
	CanCreate bool
	Form      *TopicForm
	Data      any
}

// page serves a page: the whole document, or with ?part=main only its
// main part (what the script swaps in on each refresh).
func (c *Console) page(name, title string, collect collectFunc) http.HandlerFunc {
	nav := name
	switch name {
	case "topic":
		nav = "topics"
	case "group":
		nav = "groups"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := collect(r.Context(), r)
		tmpl, status := name, http.StatusOK
		if errors.Is(err, ErrNotFound) {
			tmpl, status, data = "notfound", http.StatusNotFound, err.Error()
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if name == "topic" || name == "group" {
			title += " " + r.PathValue("name")
		}
		c.render(w, r, status, tmpl, view{Title: title, Nav: nav, Data: data})
	}
}

// render writes page tmpl with v: the whole document, or with ?part=main
// only its main part.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, tmpl string, v view) {
	v.RefreshMillis, v.Node, v.CanCreate = c.cfg.RefreshPeriod.Milliseconds(), c.cfg.Node, !c.cfg.ReadOnly
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	t := c.templates[tmpl]
	var err error
	if r.URL.Query().Get("part") == "main" {
		err = t.ExecuteTemplate(w, "main", v)
	} else {
		err = t.ExecuteTemplate(w, "layout.html", v)
	}
	if err != nil {
		c.log.Warn("console page", "page", tmpl, "error", err)
	}
}

// api serves a page's data as JSON.
func (c *Console) api(collect collectFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := collect(r.Context(), r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		switch {
		case errors.Is(err, ErrNotFound):
			w.WriteHeader(http.StatusNotFound)
			data = map[string]string{"error": err.Error()}
		case err != nil:
			w.WriteHeader(http.StatusInternalServerError)
			data = map[string]string{"error": err.Error()}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(data); err != nil {
			c.log.Debug("console api", "path", r.URL.Path, "error", err)
		}
	}
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"ids": FormatIDs,
	// bytes is a size in IEC units, "-" when unknown (-1).
	"bytes": func(n int64) string {
		if n < 0 {
			return "-"
		}
		return humanize.IBytes(uint64(n))
	},
	// num is an offset or count, "-" when unknown (-1).
	"num": func(n int64) string {
		if n < 0 {
			return "-"
		}
		return strconv.FormatInt(n, 10)
	},
	"has": func(ids []int32, id int32) bool { return slices.Contains(ids, id) },
	// ago is a last contact: "-" never, "now" for 0.
	"ago": func(d time.Duration) string {
		switch {
		case d < 0:
			return "never"
		case d == 0:
			return "now"
		}
		return d.Round(time.Millisecond).String() + " ago"
	},
	"clock": func(t time.Time) string { return t.Format("15:04:05") },
	"ms":    func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" },
	"path":  url.PathEscape,
	// dict builds a map for a sub-template: dict "K1" v1 "K2" v2.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errors.New("dict: a key is not a string")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
	"lower": strings.ToLower,
}
