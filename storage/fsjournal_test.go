package storage_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skein-io/skein/storage"
)

// TestFsyncJournalFormat checks the journal lines the machine-crash
// harness parses: "sync <abs path> <size>", "rename <abs> <abs>",
// "remove <abs>", and that each synced size is the file's size then.
func TestFsyncJournalFormat(t *testing.T) {
	dir := t.TempDir()
	jpath := filepath.Join(t.TempDir(), "journal")
	j, err := storage.OpenFsyncJournal(jpath)
	if err != nil {
		t.Fatal(err)
	}
	remove := storage.AddFileObserver(j)
	m := openManager(t, dir)
	l := mustLog(t, m, smallSegments())
	appendN(t, l, 30, 300, 1)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	remove()
	j.Close()
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Split(line, " ")
		seen[f[0]]++
		switch f[0] {
		case "sync":
			if len(f) != 3 || !filepath.IsAbs(f[1]) {
				t.Fatalf("bad line %q", line)
			}
			if _, err := strconv.ParseInt(f[2], 10, 64); err != nil {
				t.Fatalf("bad size in %q", line)
			}
		case "rename":
			if len(f) != 3 || !filepath.IsAbs(f[1]) || !filepath.IsAbs(f[2]) {
				t.Fatalf("bad line %q", line)
			}
		case "remove":
			if len(f) != 2 || !filepath.IsAbs(f[1]) {
				t.Fatalf("bad line %q", line)
			}
		default:
			t.Fatalf("unknown line %q", line)
		}
	}
	if seen["sync"] == 0 || seen["rename"] == 0 || seen["remove"] == 0 {
		t.Fatalf("journal lines by kind: %v", seen)
	}
}
