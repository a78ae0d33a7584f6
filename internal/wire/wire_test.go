package wire

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update rewrites the golden files (and refreshes testdata/examples from
// ../shared/wire/examples when that checkout is present):
//
//	go test ./internal/wire/ -update
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// examples is a copy of the recorded wire examples this package is tested
// against (../shared/wire/examples), kept in the repository so the tests
// do not depend on a checkout next to it. TestExamplesCurrent keeps it in
// sync.
const examples = "testdata/examples"

// shared is where the recorded examples live next to the repository.
const shared = "../../../shared/wire/examples"

// glob returns the example files matching pattern under testdata/examples,
// failing the test if there are none: a table test over no files passes
// silently.
func glob(t testing.TB, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examples, pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no examples match %s", pattern)
	}
	return files
}

// name turns testdata/examples/openai-chat/stream-text.sse into
// openai-chat_stream-text, a subtest and golden file name.
func name(path string) string {
	rel, _ := filepath.Rel(examples, path)
	rel = strings.TrimSuffix(rel, filepath.Ext(rel))
	return strings.ReplaceAll(rel, string(filepath.Separator), "_")
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got, encoded as indented JSON, with testdata/<name>.golden,
// or rewrites the file under -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(b)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// TestExamplesCurrent checks that testdata/examples matches the shared
// recorded examples, when they are checked out next to the repository.
func TestExamplesCurrent(t *testing.T) {
	if _, err := os.Stat(shared); err != nil {
		t.Skip("no shared examples checkout")
	}
	dirs, _ := filepath.Glob(filepath.Join(examples, "*"))
	for _, dir := range dirs {
		mine, _ := filepath.Glob(filepath.Join(dir, "*"))
		theirs, _ := filepath.Glob(filepath.Join(shared, filepath.Base(dir), "*"))
		for _, src := range theirs {
			ext := filepath.Ext(src)
			if ext != ".json" && ext != ".sse" {
				continue
			}
			dst := filepath.Join(dir, filepath.Base(src))
			want := read(t, src)
			got, err := os.ReadFile(dst)
			switch {
			case *update && !bytes.Equal(want, got):
				if err := os.WriteFile(dst, want, 0o644); err != nil {
					t.Fatal(err)
				}
			case err != nil && strings.HasPrefix(filepath.Base(dir), "ollama"):
				// Only the Ollama files this package reads are copied.
			case err != nil:
				t.Errorf("%s is missing (run with -update)", dst)
			case !bytes.Equal(want, got):
				t.Errorf("%s differs from %s (run with -update)", dst, src)
			}
		}
		if len(mine) == 0 {
			t.Errorf("%s is empty", dir)
		}
	}
}
