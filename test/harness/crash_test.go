package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDropUnsynced replays a fabricated journal over a fabricated data
// directory and checks each rule: the last sync wins, a rename carries the
// durable size (or its absence), a remove forgets, a file never synced
// goes to 0 bytes, nothing grows, and a torn last line is ignored.
func TestDropUnsynced(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	part := filepath.Join(data, "t-0")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(part, name) }
	files := map[string]int{ // name -> size on disk at the crash
		"00000000000000000000.log": 300, // synced at 100, then 200
		"00000000000000000040.log": 150, // never synced
		"producer-state.snapshot":  50,  // written as .tmp, synced, renamed
		"leader-epoch-checkpoint":  30,  // renamed from an unsynced .tmp
		"recovery-point":           10,  // synced at 64: larger than it is now
		"00000000000000000080.log": 70,  // synced, removed, recreated, not synced
		"00000000000000000120.log": 90,  // synced at 90 exactly
	}
	for name, size := range files {
		if err := os.WriteFile(p(name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(data, "moved-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(data, "moved-1", "a.log")
	if err := os.WriteFile(moved, make([]byte, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(data, "meta.properties")
	if err := os.WriteFile(meta, []byte("node.id=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	journal := strings.Join([]string{
		"sync " + p("00000000000000000000.log") + " 100",
		"sync " + meta + " 10",
		"sync " + p("00000000000000000000.log") + " 200",
		"sync " + p("producer-state.snapshot.tmp") + " 50",
		"rename " + p("producer-state.snapshot.tmp") + " " + p("producer-state.snapshot"),
		"rename " + p("leader-epoch-checkpoint.tmp") + " " + p("leader-epoch-checkpoint"),
		"sync " + p("recovery-point") + " 64",
		"sync " + p("00000000000000000080.log") + " 70",
		"remove " + p("00000000000000000080.log"),
		"sync " + p("00000000000000000120.log") + " 90",
		// A deleted topic's directory: renamed, then removed.
		"sync " + filepath.Join(data, "gone-0", "00000000000000000000.log") + " 9",
		"rename " + filepath.Join(data, "gone-0") + " " + filepath.Join(data, "gone-0.x-delete"),
		"sync " + filepath.Join(data, "moved-0", "a.log") + " 5",
		"rename " + filepath.Join(data, "moved-0") + " " + filepath.Join(data, "moved-1"),
		"remove " + filepath.Join(data, "gone-0.x-delete"),
		"sync " + p("00000000000000000040.log") + " 1", // torn: no newline
	}, "\n")
	jpath := filepath.Join(dir, "broker.fsync-journal")
	if err := os.WriteFile(jpath, []byte(journal), 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := DropUnsynced(data, jpath)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		p("00000000000000000000.log"): 200,
		p("00000000000000000040.log"): 0,
		p("producer-state.snapshot"):  50,
		p("leader-epoch-checkpoint"):  0,
		p("recovery-point"):           10,
		p("00000000000000000080.log"): 0,
		p("00000000000000000120.log"): 90,
		meta:                          10,
		moved:                         5,
	}
	for path, size := range want {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != size {
			t.Errorf("%s: %d bytes after the crash, want %d", filepath.Base(path), st.Size(), size)
		}
	}
	if r.Files != 9 || r.Truncated != 5 || r.Dropped != 100+150+30+70+3 || r.Events != 15 {
		t.Errorf("report %+v: want 9 files, 5 truncated, 353 bytes dropped, 15 events", r)
	}
	t.Log(r)
}

func TestDropUnsyncedErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := DropUnsynced(dir, filepath.Join(dir, "absent")); !errors.Is(err, ErrNoJournal) {
		t.Errorf("missing journal: %v, want ErrNoJournal", err)
	}
	for _, bad := range []string{
		"sync relative/path 10\n",
		"sync /abs/path ten\n",
		"rename /a\n",
		"fsync /a 1\n",
	} {
		j := filepath.Join(dir, "journal")
		if err := os.WriteFile(j, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := DropUnsynced(dir, j); err == nil || errors.Is(err, ErrNoJournal) {
			t.Errorf("journal %q: %v, want a parse error", bad, err)
		}
	}
	// A journal naming only files elsewhere is refused, not obeyed.
	j := filepath.Join(dir, "journal")
	if err := os.WriteFile(j, []byte("sync /elsewhere/x.log 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DropUnsynced(dir, j); err == nil {
		t.Error("journal naming no file under the data dir: no error")
	}
}
