package harness

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// httpClient bounds every request to a node's HTTP endpoint.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// Metrics scrapes the node's /metrics (Options.HTTP) and returns the
// metric families by name.
func (n *Node) Metrics() (map[string]*dto.MetricFamily, error) {
	if n.HTTPAddr == "" {
		return nil, fmt.Errorf("%s has no HTTP endpoint (Options.HTTP)", n.Name)
	}
	resp, err := httpClient.Get("http://" + n.HTTPAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", n.Name, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s /metrics: %w", n.Name, err)
	}
	return fams, nil
}

// Readyz asks the node's /readyz (Options.HTTP): the status code and the
// body, trimmed.
func (n *Node) Readyz() (int, string, error) {
	if n.HTTPAddr == "" {
		return 0, "", fmt.Errorf("%s has no HTTP endpoint (Options.HTTP)", n.Name)
	}
	resp, err := httpClient.Get("http://" + n.HTTPAddr + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// MetricValue returns the value of the first series of family name whose
// labels include labels (a counter's or gauge's value, a histogram's
// sample count), and whether there is one.
func MetricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}
