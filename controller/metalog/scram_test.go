package metalog

import (
	"reflect"
	"testing"

	"github.com/skein-io/skein/controller/image"
)

// TestApplyScramCredentials: a credential is set, replaced and removed;
// removing what is not there, or an incomplete credential, discards the
// entry; the image before is never modified; a snapshot round trip keeps
// the credentials.
func TestApplyScramCredentials(t *testing.T) {
	set := func(name string, mech int8, key string) Change {
		return Change{Type: TypeUserScramCredential, UserScramCredential: &UserScramCredentialRecord{
			Name: name, Mechanism: mech, Salt: []byte("salt"), Iterations: 4096, StoredKey: []byte(key), ServerKey: []byte(key)}}
	}
	remove := func(name string, mech int8) Change {
		return Change{Type: TypeRemoveUserScramCredential, RemoveUserScramCredential: &RemoveUserScramCredentialRecord{Name: name, Mechanism: mech}}
	}
	img0 := image.New()
	img1, err := ApplyEntry(img0, 1, Entry{Records: []Change{set("alice", 1, "a1"), set("alice", 2, "a2"), set("bob", 2, "b2")}})
	if err != nil {
		t.Fatal(err)
	}
	if img0.ScramUsers != nil {
		t.Fatal("the input image was modified")
	}
	img2, err := ApplyEntry(img1, 2, Entry{Records: []Change{set("alice", 1, "a1'"), remove("bob", 2)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(img1.ScramUsers["alice"][1].StoredKey); got != "a1" {
		t.Errorf("image 1 changed: alice's key %q", got)
	}
	if got := string(img2.ScramUsers["alice"][1].StoredKey); got != "a1'" {
		t.Errorf("alice's replaced key %q", got)
	}
	if _, ok := img2.ScramUsers["bob"]; ok {
		t.Error("bob without credentials still has an entry")
	}
	if _, ok := img1.ScramUsers["bob"]; !ok {
		t.Error("image 1 lost bob")
	}
	for i, bad := range []Change{remove("bob", 2), remove("alice", 3), set("", 1, "k"), set("carol", 3, "k"), set("carol", 1, ""),
		{Type: TypeUserScramCredential}} {
		next, err := ApplyEntry(img2, 3, Entry{Records: []Change{set("dave", 1, "d"), bad}})
		if err == nil {
			t.Errorf("bad change %d applied", i)
		}
		if next.ScramUsers["dave"] != nil {
			t.Errorf("bad change %d: the rest of its entry applied", i)
		}
	}
	b, err := image.Marshal(img2)
	if err != nil {
		t.Fatal(err)
	}
	back, err := image.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.ScramUsers, img2.ScramUsers) {
		t.Errorf("snapshot round trip: %v, want %v", back.ScramUsers, img2.ScramUsers)
	}
}
