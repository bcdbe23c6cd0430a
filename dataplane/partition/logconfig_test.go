package partition

import (
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
)

func TestTopicConfigsCleanupPolicy(t *testing.T) {
	img := &image.Image{}
	for _, tc := range []struct {
		policy          string
		delete, compact bool
	}{
		{"", true, false},
		{"delete", true, false},
		{"compact", false, true},
		{"compact,delete", true, true},
		{"delete, compact", true, true},
	} {
		cfgs := map[string]string{"min.cleanable.dirty.ratio": "0.25", "delete.retention.ms": "1000", "min.compaction.lag.ms": "5"}
		if tc.policy != "" {
			cfgs["cleanup.policy"] = tc.policy
		}
		lc, s, err := TopicConfigs(img, &image.Topic{Name: "t", Configs: cfgs})
		if err != nil {
			t.Fatal(err)
		}
		if lc.Delete != tc.delete || lc.Compact != tc.compact || s.Compact != tc.compact {
			t.Errorf("cleanup.policy %q: delete %v compact %v (settings %v)", tc.policy, lc.Delete, lc.Compact, s.Compact)
		}
		if lc.MinCleanableDirtyRatio != 0.25 || lc.DeleteRetention != time.Second || lc.MinCompactionLag != 5*time.Millisecond {
			t.Errorf("cleaner settings %+v", lc)
		}
		if err := lc.Validate(); err != nil {
			t.Errorf("cleanup.policy %q: %v", tc.policy, err)
		}
	}
}
