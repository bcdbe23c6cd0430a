package partition

import (
	"testing"

	"github.com/skein-io/skein/controller/image"
)

// TestFollowersDialTheInterBrokerListener: a follower is given its
// leader's address on the inter-broker listener, whatever the order of
// the leader's listeners, and no address when the leader has none of that
// name.
func TestFollowersDialTheInterBrokerListener(t *testing.T) {
	m, _ := newTestManager(t) // node 1
	m.cfg.InterBrokerListener = "INTERNAL"
	var followed []Follower
	m.cfg.OnFollowers = func(ch FollowerChanges) { followed = ch.Followed }

	img := testImage(1, testTopic("t", 1, 1, 2, 0, []int32{1, 2}, nil))
	img.Brokers[2].Listeners = []image.Endpoint{
		{Name: "EXTERNAL", Host: "127.0.0.1", Port: 19093}, {Name: "INTERNAL", Host: "broker-2", Port: 9092}}
	m.ApplyImage(img)
	if len(followed) != 1 || followed[0].LeaderID != 2 || followed[0].LeaderAddr != "broker-2:9092" {
		t.Fatalf("followers %+v, want leader 2 at broker-2:9092", followed)
	}

	img = testImage(2, testTopic("t", 1, 1, 2, 0, []int32{1, 2}, nil))
	img.Brokers[2].Listeners = []image.Endpoint{{Name: "EXTERNAL", Host: "127.0.0.1", Port: 19093}}
	m.ApplyImage(img)
	if len(followed) != 1 || followed[0].LeaderAddr != "" {
		t.Fatalf("leader without the inter-broker listener: followers %+v, want no address", followed)
	}
}
