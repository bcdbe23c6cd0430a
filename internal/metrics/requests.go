package metrics

import (
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

// LatencyBuckets are the upper bounds of the request latency histograms, in
// seconds: 100 µs to 30 s (a fetch may wait up to its MaxWait for data, a
// broker's metadata long poll on a controller up to 5 s).
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Requests counts what a Kafka listener serves, per API key (label api,
// Kafka's request name: "Produce", "Fetch", ...):
//
//	skein_requests_total{api}                 requests answered
//	skein_request_errors_total{api,error}     error codes in the answers, by Kafka name
//	skein_request_duration_seconds{api}       from the request read whole to its response written
//
// Errors count every non-zero error code of a response, partition-level
// ones included (a Produce to three partitions that fails on two counts
// two), as Kafka's ErrorsPerSec does. A request that closes the connection
// (a protocol violation) is not counted.
//
// Requests is a wire.Observer. The series of every API key are resolved
// once, when it is built, into a fixed array: serving a request reads that
// array, bumps a counter and a histogram and, only when its answer carries
// an error, an error counter resolved on the first occurrence of that code.
type Requests struct {
	total   *prometheus.CounterVec
	errors  *prometheus.CounterVec
	latency *prometheus.HistogramVec
	byKey   [kmsg.MaxKey + 1]*apiSeries
}

// errorSlots bounds the error codes kept in each API's fixed array
// (Kafka's codes run from -1 to a little over 130); a code outside it is
// counted through the label lookup.
const errorSlots = 256

// apiSeries are the resolved series of one API key.
type apiSeries struct {
	name    string
	total   prometheus.Counter
	latency prometheus.Observer
	errors  *prometheus.CounterVec
	// byCode[code+1] is the error counter of code, resolved on first use.
	byCode [errorSlots]atomic.Pointer[prometheus.Counter]
	plan   *errorPlan
}

// NewRequests returns the request metrics of a listener serving keys
// (every key it registered: a wire.Registry's Versions); requests of
// other keys are not counted.
func NewRequests(keys []int16) *Requests {
	r := &Requests{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "requests_total",
			Help: "Kafka requests answered, by API.",
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "request_errors_total",
			Help: "Error codes in Kafka responses (each partition's counts), by API and Kafka error name.",
		}, []string{"api", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Time from a Kafka request read whole to its response written, by API.",
			Buckets: LatencyBuckets,
		}, []string{"api"}),
	}
	for _, key := range keys {
		if key < 0 || int(key) >= len(r.byKey) || r.byKey[key] != nil {
			continue
		}
		name := kmsg.NameForKey(key)
		if name == "" {
			name = "Key" + strconv.Itoa(int(key))
		}
		s := &apiSeries{
			name:    name,
			total:   r.total.WithLabelValues(name),
			latency: r.latency.WithLabelValues(name),
			errors:  r.errors,
		}
		if resp := kmsg.ResponseForKey(key); resp != nil {
			s.plan = planFor(reflect.TypeOf(resp).Elem(), nil)
		}
		r.byKey[key] = s
	}
	return r
}

// Collectors returns what to register.
func (r *Requests) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.total, r.errors, r.latency}
}

// Served implements wire.Observer.
func (r *Requests) Served(h wire.Header, resp kmsg.Response, received time.Time) {
	if h.Key < 0 || int(h.Key) >= len(r.byKey) {
		return
	}
	s := r.byKey[h.Key]
	if s == nil {
		return
	}
	s.total.Inc()
	s.latency.Observe(time.Since(received).Seconds())
	if resp != nil {
		s.countErrors(resp)
	}
}

// countErrors counts the error codes of resp: by hand for the two hot
// APIs, through the type's plan for the others.
func (s *apiSeries) countErrors(resp kmsg.Response) {
	if fr, ok := resp.(*wire.FileResponse); ok {
		resp = fr.Response
	}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			ps := r.Topics[i].Partitions
			for j := range ps {
				if ps[j].ErrorCode != 0 {
					s.countError(ps[j].ErrorCode)
				}
			}
		}
	case *kmsg.FetchResponse:
		if r.ErrorCode != 0 {
			s.countError(r.ErrorCode)
		}
		for i := range r.Topics {
			ps := r.Topics[i].Partitions
			for j := range ps {
				if ps[j].ErrorCode != 0 {
					s.countError(ps[j].ErrorCode)
				}
			}
		}
	default:
		if s.plan != nil {
			v := reflect.ValueOf(resp)
			if v.Kind() == reflect.Pointer && !v.IsNil() {
				s.plan.walk(v.Elem(), s)
			}
		}
	}
}

// countError counts one error code.
func (s *apiSeries) countError(code int16) {
	slot := int(code) + 1
	if slot < 0 || slot >= errorSlots {
		s.errors.WithLabelValues(s.name, ErrorName(code)).Inc()
		return
	}
	if c := s.byCode[slot].Load(); c != nil {
		(*c).Inc()
		return
	}
	c := s.errors.WithLabelValues(s.name, ErrorName(code))
	s.byCode[slot].Store(&c)
	c.Inc()
}

// ErrorName is the Kafka name of an error code (NOT_LEADER_OR_FOLLOWER is
// NOT_LEADER_FOR_PARTITION, as franz-go names it); a code franz-go does not
// know is "CODE_<n>".
func ErrorName(code int16) string {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && (e.Code == code) {
		return e.Message
	}
	return "CODE_" + strconv.Itoa(int(code))
}

// errorPlan says where a response struct type keeps error codes: its own
// int16 fields named ErrorCode, and the structs (alone or in slices)
// nested in it that have some.
type errorPlan struct {
	codes  []int
	nested []nestedPlan
}

type nestedPlan struct {
	field int
	slice bool
	plan  *errorPlan
}

var int16Type = reflect.TypeOf(int16(0))

// planFor returns the plan of struct type t, nil when no error code is
// reachable from it. seen guards against recursive types.
func planFor(t reflect.Type, seen map[reflect.Type]bool) *errorPlan {
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	if seen == nil {
		seen = map[reflect.Type]bool{}
	}
	seen[t] = true
	defer delete(seen, t)
	p := &errorPlan{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		switch {
		case f.Name == "ErrorCode" && f.Type == int16Type:
			p.codes = append(p.codes, i)
		case f.Type.Kind() == reflect.Struct:
			if sub := planFor(f.Type, seen); sub != nil {
				p.nested = append(p.nested, nestedPlan{field: i, plan: sub})
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			if sub := planFor(f.Type.Elem(), seen); sub != nil {
				p.nested = append(p.nested, nestedPlan{field: i, slice: true, plan: sub})
			}
		}
	}
	if len(p.codes) == 0 && len(p.nested) == 0 {
		return nil
	}
	return p
}

// walk counts the non-zero error codes of v (a struct of the plan's type).
func (p *errorPlan) walk(v reflect.Value, s *apiSeries) {
	for _, i := range p.codes {
		if c := v.Field(i).Int(); c != 0 {
			s.countError(int16(c))
		}
	}
	for _, n := range p.nested {
		f := v.Field(n.field)
		if !n.slice {
			n.plan.walk(f, s)
			continue
		}
		for j := 0; j < f.Len(); j++ {
			n.plan.walk(f.Index(j), s)
		}
	}
}
