package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readOffsetJSON takes kafka-delete-records.sh's file and refuses what
// that tool refuses, naming the file and what is wrong.
func TestReadOffsetJSON(t *testing.T) {
	for _, tc := range []struct {
		doc, err string
		want     int
	}{
		{doc: `{"partitions": [{"topic": "t", "partition": 0, "offset": 10}, {"topic": "u", "partition": 2, "offset": -1}], "version": 1}`, want: 2},
		{doc: `{"partitions": [{"topic": "t", "partition": 0}], "version": 1}`, err: "an offset >= -1"},
		{doc: `{"partitions": [{"topic": "t", "partition": 0, "offset": -2}], "version": 1}`, err: "an offset >= -1"},
		{doc: `{"partitions": [{"topic": "t", "partition": 0, "offset": 1}, {"topic": "t", "partition": 0, "offset": 2}], "version": 1}`, err: "appears twice"},
		{doc: `{"partitions": [{"topic": "t", "partition": 0, "offset": 1}], "version": 2}`, err: "version 1"},
		{doc: `{"partitions": [{"topic": "t", "partition": 0, "offset": 1, "leader": 3}], "version": 1}`, err: "unknown field"},
		{doc: `{"partitions": [`, err: "want {"},
	} {
		path := filepath.Join(t.TempDir(), "offsets.json")
		if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readOffsetJSON(path)
		switch {
		case tc.err == "" && (err != nil || len(got) != tc.want):
			t.Errorf("%s: %d offsets, %v; want %d", tc.doc, len(got), err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path)):
			t.Errorf("%s: error %v, want one naming the file and saying %q", tc.doc, err, tc.err)
		}
	}
}
