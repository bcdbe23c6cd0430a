package metrics

import (
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

// find returns the series of family name whose labels include want (nil
// when there is none).
func find(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, reg, name, labels)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	return m.GetCounter().GetValue()
}

func newTestRequests(t *testing.T) (*Requests, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r := NewRequests([]int16{0, 1, 3, 8, 18})
	for _, c := range r.Collectors() {
		reg.MustRegister(c)
	}
	return r, reg
}

func produceResponse(codes ...int16) *kmsg.ProduceResponse {
	resp := kmsg.NewPtrProduceResponse()
	t := kmsg.NewProduceResponseTopic()
	t.Topic = "a"
	for i, c := range codes {
		p := kmsg.NewProduceResponseTopicPartition()
		p.Partition, p.ErrorCode = int32(i), c
		t.Partitions = append(t.Partitions, p)
	}
	resp.Topics = append(resp.Topics, t)
	return resp
}

func TestRequestsCountAndTime(t *testing.T) {
	r, reg := newTestRequests(t)
	// Every registered API has its series from the start, at zero.
	if v := counterValue(t, reg, "skein_requests_total", map[string]string{"api": "OffsetCommit"}); v != 0 {
		t.Fatalf("OffsetCommit requests before any: %v", v)
	}
	received := time.Now().Add(-3 * time.Millisecond)
	for range 5 {
		r.Served(wire.Header{Key: 0}, produceResponse(0, 0), received)
	}
	r.Served(wire.Header{Key: 0}, nil, received) // acks=0: no response
	r.Served(wire.Header{Key: 1}, wire.NewFileResponse(kmsg.NewPtrFetchResponse()), received)
	r.Served(wire.Header{Key: 42}, kmsg.NewPtrDeleteGroupsResponse(), received) // not registered

	if v := counterValue(t, reg, "skein_requests_total", map[string]string{"api": "Produce"}); v != 6 {
		t.Fatalf("Produce requests = %v, want 6", v)
	}
	if v := counterValue(t, reg, "skein_requests_total", map[string]string{"api": "Fetch"}); v != 1 {
		t.Fatalf("Fetch requests = %v, want 1", v)
	}
	if m := find(t, reg, "skein_requests_total", map[string]string{"api": "DeleteGroups"}); m != nil {
		t.Fatalf("an API not registered was counted: %v", m)
	}
	h := find(t, reg, "skein_request_duration_seconds", map[string]string{"api": "Produce"}).GetHistogram()
	if h.GetSampleCount() != 6 || h.GetSampleSum() < 6*0.003 {
		t.Fatalf("Produce latency: %d samples summing to %vs, want 6 of at least 3ms", h.GetSampleCount(), h.GetSampleSum())
	}
	// Each sample landed in a bucket above 3 ms.
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() < 0.003 && b.GetCumulativeCount() != 0 {
			t.Fatalf("bucket le=%v holds %d samples of >= 3ms", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	if find(t, reg, "skein_request_errors_total", nil) != nil {
		t.Fatal("errors counted for answers without any")
	}
}

func TestRequestsCountErrorCodes(t *testing.T) {
	r, reg := newTestRequests(t)
	now := time.Now()
	notLeader, timedOut := kerr.NotLeaderForPartition.Code, kerr.RequestTimedOut.Code
	r.Served(wire.Header{Key: 0}, produceResponse(0, notLeader, notLeader, timedOut), now)

	fetch := kmsg.NewPtrFetchResponse()
	fetch.ErrorCode = kerr.FetchSessionIDNotFound.Code
	ft := kmsg.NewFetchResponseTopic()
	fp := kmsg.NewFetchResponseTopicPartition()
	fp.ErrorCode = kerr.OffsetOutOfRange.Code
	ft.Partitions = append(ft.Partitions, fp, kmsg.NewFetchResponseTopicPartition())
	fetch.Topics = append(fetch.Topics, ft)
	r.Served(wire.Header{Key: 1}, wire.NewFileResponse(fetch), now)

	// Other APIs go through the reflective plan: topic and partition codes.
	md := kmsg.NewPtrMetadataResponse()
	mt := kmsg.NewMetadataResponseTopic()
	mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
	mt2 := kmsg.NewMetadataResponseTopic()
	mp := kmsg.NewMetadataResponseTopicPartition()
	mp.ErrorCode = kerr.LeaderNotAvailable.Code
	mt2.Partitions = append(mt2.Partitions, mp, mp)
	md.Topics = append(md.Topics, mt, mt2)
	r.Served(wire.Header{Key: 3}, md, now)

	oc := kmsg.NewPtrOffsetCommitResponse()
	oct := kmsg.NewOffsetCommitResponseTopic()
	ocp := kmsg.NewOffsetCommitResponseTopicPartition()
	ocp.ErrorCode = 999 // a code franz-go does not know
	oct.Partitions = append(oct.Partitions, ocp)
	oc.Topics = append(oc.Topics, oct)
	r.Served(wire.Header{Key: 8}, oc, now)

	for _, c := range []struct {
		api, err string
		want     float64
	}{
		{"Produce", "NOT_LEADER_FOR_PARTITION", 2},
		{"Produce", "REQUEST_TIMED_OUT", 1},
		{"Fetch", "FETCH_SESSION_ID_NOT_FOUND", 1},
		{"Fetch", "OFFSET_OUT_OF_RANGE", 1},
		{"Metadata", "UNKNOWN_TOPIC_OR_PARTITION", 1},
		{"Metadata", "LEADER_NOT_AVAILABLE", 2},
		{"OffsetCommit", "CODE_999", 1},
	} {
		if v := counterValue(t, reg, "skein_request_errors_total", map[string]string{"api": c.api, "error": c.err}); v != c.want {
			t.Errorf("%s %s = %v, want %v", c.api, c.err, v, c.want)
		}
	}
	// The second occurrence of a code goes through the resolved counter.
	r.Served(wire.Header{Key: 0}, produceResponse(notLeader), now)
	if v := counterValue(t, reg, "skein_request_errors_total", map[string]string{"api": "Produce", "error": "NOT_LEADER_FOR_PARTITION"}); v != 3 {
		t.Fatalf("Produce NOT_LEADER_FOR_PARTITION = %v, want 3", v)
	}
}

// TestErrorPlansReachEveryErrorCode checks the reflective plans against
// every response kmsg knows: an error code set in each ErrorCode field
// (in the first element of every slice on the way) is counted once.
func TestErrorPlansReachEveryErrorCode(t *testing.T) {
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		resp := kmsg.ResponseForKey(key)
		if resp == nil {
			continue
		}
		fields := setErrorCodes(reflectValue(resp), 0)
		reg := prometheus.NewRegistry()
		r := NewRequests([]int16{key})
		for _, c := range r.Collectors() {
			reg.MustRegister(c)
		}
		s := r.byKey[key]
		s.countErrors(resp)
		got := 0.0
		if fields > 0 {
			got = counterValue(t, reg, "skein_request_errors_total", map[string]string{"api": s.name, "error": "UNKNOWN_SERVER_ERROR"})
		}
		if got != float64(fields) {
			t.Errorf("%s: %d error codes set, %v counted", s.name, fields, got)
		}
	}
}

func reflectValue(resp kmsg.Response) reflect.Value { return reflect.ValueOf(resp).Elem() }

// setErrorCodes sets every ErrorCode field reachable from struct v to -1,
// giving each slice of structs on the way one element, and returns how
// many it set. Written apart from planFor, to check it.
func setErrorCodes(v reflect.Value, depth int) int {
	if depth > 10 {
		return 0
	}
	n := 0
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		switch {
		case sf.Name == "ErrorCode" && f.Kind() == reflect.Int16:
			f.SetInt(-1)
			n++
		case f.Kind() == reflect.Struct:
			n += setErrorCodes(f, depth+1)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			f.Set(reflect.Append(f, reflect.New(f.Type().Elem()).Elem()))
			n += setErrorCodes(f.Index(0), depth+1)
		}
	}
	return n
}

// BenchmarkServedProduce is what the request metrics add to one Produce
// request without errors: a clock read, a counter and a histogram.
func BenchmarkServedProduce(b *testing.B) {
	r := NewRequests([]int16{0})
	resp := produceResponse(0)
	received := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		r.Served(wire.Header{Key: 0}, resp, received)
	}
}
