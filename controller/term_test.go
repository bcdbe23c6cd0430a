package controller

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/controller/image"
)

// TestApplyDiscardsEntryOfAnotherTerm: an entry decided in one controller
// term but written to the log in another (the controller lost and regained
// leadership between reading the image and proposing) is discarded whole,
// and the proposer's error maps to NOT_CONTROLLER. Entries without a term
// (written before the field existed) apply as before.
func TestApplyDiscardsEntryOfAnotherTerm(t *testing.T) {
	reg := `{"type":"RegisterBroker","register_broker":{"id":7,"incarnation":"x","host":"h","port":9092}}`
	for _, tc := range []struct {
		name    string
		data    string
		logTerm uint64
		applied bool
	}{
		{"same term", `{"term":3,"records":[` + reg + `]}`, 3, true},
		{"decided in an older term", `{"term":3,"records":[` + reg + `]}`, 4, false},
		{"no term (old entry)", `{"records":[` + reg + `]}`, 9, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(hclog.NewNullLogger())
			resp := f.Apply(&raft.Log{Index: 5, Term: tc.logTerm, Type: raft.LogCommand, Data: []byte(tc.data)})
			img := f.current()
			if img.Index != 5 {
				t.Fatalf("index %d, want 5 (applied or discarded, the index moves)", img.Index)
			}
			if got := img.Brokers[7] != nil; got != tc.applied {
				t.Fatalf("applied %v, want %v (response %v)", got, tc.applied, resp)
			}
			if tc.applied {
				if resp != nil {
					t.Fatalf("response %v", resp)
				}
				return
			}
			err, _ := resp.(error)
			if !errors.Is(err, errStaleTerm) {
				t.Fatalf("response %v, want errStaleTerm", resp)
			}
			if code, _ := kafkaError(err); code != kerr.NotController.Code {
				t.Fatalf("mapped to %d, want NOT_CONTROLLER", code)
			}
		})
	}
}

// TestProposeChecksTerm: a running controller's decision carries the term
// of its leadership; one carrying an earlier term (read in a leadership
// since lost) is discarded and answered NOT_CONTROLLER.
func TestProposeChecksTerm(t *testing.T) {
	ctl := startController(t, testConfig(t, t.TempDir()))
	waitImage(t, ctl, "cluster id", func(img *image.Image) bool { return img.ClusterID != "" })
	ls := ctl.active.Load()
	if ls == nil || ls.term == 0 {
		t.Fatalf("active leader state without a term: %+v", ls)
	}
	rec := []record{{Type: typeRegisterBroker, RegisterBroker: &registerBrokerRecord{ID: 5, Incarnation: "x", Host: "h", Port: 1}}}
	ctl.decideMu.Lock()
	defer ctl.decideMu.Unlock()
	stale := &leaderState{term: ls.term - 1}
	_, err := ctl.propose(stale, rec)
	if code, _ := kafkaError(err); code != kerr.NotController.Code {
		t.Fatalf("stale term: %v, want NOT_CONTROLLER", err)
	}
	if ctl.fsm.current().Brokers[5] != nil {
		t.Fatal("entry of a stale term applied")
	}
	if _, err := ctl.propose(ls, rec); err != nil {
		t.Fatalf("current term: %v", err)
	}
	if ctl.fsm.current().Brokers[5] == nil {
		t.Fatal("entry of the current term not applied")
	}
}
