package harness

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FsyncJournalEnv names the environment variable that makes a broker append
// one line per durability event to a file (its fsync journal):
//
//	sync <absolute path> <size in bytes after the fsync>
//	rename <absolute old path> <absolute new path>
//	remove <absolute path>
//
// MachineCrash replays it to drop what a power loss would have lost.
const FsyncJournalEnv = "SKEIN_FSYNC_JOURNAL"

// ErrNoJournal is returned by DropUnsynced (and MachineCrash) when the
// journal file does not exist: the broker binary does not write one, so a
// machine crash cannot be simulated (the kill still happened).
var ErrNoJournal = errors.New("no fsync journal")

// CrashReport says what a simulated machine crash dropped.
type CrashReport struct {
	Files     int   // regular files under the data directory
	Truncated int   // files cut back to their durable size
	Dropped   int64 // bytes dropped in total
	Events    int   // journal lines replayed
}

func (r CrashReport) String() string {
	return fmt.Sprintf("%d of %d files truncated to their last fsync, %d bytes dropped (%d journal events)",
		r.Truncated, r.Files, r.Dropped, r.Events)
}

// MachineCrash simulates the machine under a broker losing power: SIGKILL,
// then every file under the broker's data directory is cut back to what
// its fsync journal says reached the disk (DropUnsynced). The node is left
// stopped; Restart brings it back. With no journal (a binary without
// FsyncJournalEnv support, or Options.FsyncJournal unset) it returns
// ErrNoJournal after the kill, having dropped nothing.
func (n *Node) MachineCrash() (CrashReport, error) {
	if err := n.Kill(); err != nil {
		return CrashReport{}, err
	}
	if n.JournalPath == "" {
		return CrashReport{}, ErrNoJournal
	}
	return DropUnsynced(n.DataDir, n.JournalPath)
}

// DropUnsynced truncates every regular file under dataDir to the size the
// fsync journal at journal proves durable:
//   - a file's durable size is the size on its last "sync" line;
//   - "rename old new" moves the durable size from old to new (a file
//     never synced before its rename is still not durable); renaming a
//     directory moves the files under it;
//   - "remove path" forgets path, or every file under it for a directory
//     (a later file there starts undurable);
//   - a file the journal does not know was never synced: size 0.
//
// Each file is truncated to min(current size, durable size). Files are
// not removed and directories are left alone: a crash is assumed to keep
// directory entries (the journal does not record directory syncs). A torn
// last line (the process died while writing it) is ignored.
func DropUnsynced(dataDir, journal string) (CrashReport, error) {
	durable, events, err := replayJournal(journal)
	if err != nil {
		return CrashReport{}, err
	}
	r := CrashReport{Events: events}
	root, err := filepath.Abs(dataDir)
	if err != nil {
		return r, err
	}
	// Paths that never match would truncate every file to nothing: a
	// journal naming files elsewhere (another directory spelling, say) is
	// an error, not a crash that lost everything.
	if len(durable) > 0 && !anyUnder(durable, root) {
		return r, fmt.Errorf("fsync journal %s names no file under %s", journal, root)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		r.Files++
		keep := durable[path] // 0 when never synced
		if info.Size() <= keep {
			return nil
		}
		if err := os.Truncate(path, keep); err != nil {
			return fmt.Errorf("drop unsynced tail of %s: %w", path, err)
		}
		r.Truncated++
		r.Dropped += info.Size() - keep
		return nil
	})
	return r, err
}

// replayJournal reads an fsync journal and returns each path's durable
// size and the number of events read.
func replayJournal(path string) (map[string]int64, int, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNoJournal
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read fsync journal: %w", err)
	}
	data := string(raw)
	// Only complete lines count: a SIGKILL may leave the last one torn.
	data = data[:strings.LastIndexByte(data, '\n')+1]
	durable := make(map[string]int64)
	events := 0
	for n, line := range strings.Split(data, "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		bad := func(why string) error {
			return fmt.Errorf("fsync journal %s line %d %q: %s", path, n+1, line, why)
		}
		var paths []string
		switch {
		case f[0] == "sync" && len(f) == 3:
			size, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || size < 0 {
				return nil, 0, bad("bad size")
			}
			durable[f[1]] = size
			paths = f[1:2]
		case f[0] == "rename" && len(f) == 3:
			// A directory's rename moves the files under it.
			moved := make(map[string]int64)
			for p, size := range durable {
				if rel, ok := under(p, f[1]); ok {
					moved[filepath.Join(f[2], rel)] = size
					delete(durable, p)
				}
			}
			for p := range durable {
				if _, ok := under(p, f[2]); ok {
					delete(durable, p)
				}
			}
			maps.Copy(durable, moved)
			paths = f[1:3]
		case f[0] == "remove" && len(f) == 2:
			for p := range durable {
				if _, ok := under(p, f[1]); ok {
					delete(durable, p)
				}
			}
			paths = f[1:2]
		default:
			return nil, 0, bad("want sync <path> <size>, rename <old> <new> or remove <path>")
		}
		for _, p := range paths {
			if !filepath.IsAbs(p) {
				return nil, 0, bad("path is not absolute")
			}
		}
		events++
	}
	return durable, events, nil
}

// under reports whether path is dir or inside it, and path relative to
// dir.
func under(path, dir string) (string, bool) {
	if path == dir {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, dir+string(filepath.Separator))
	return rel, ok
}

// anyUnder reports whether some path in durable is inside dir.
func anyUnder(durable map[string]int64, dir string) bool {
	for p := range durable {
		if strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
