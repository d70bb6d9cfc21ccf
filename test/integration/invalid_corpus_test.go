package integration

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// minCorpusFiles guards against the corpus silently shrinking (a bad glob, a moved
// directory) and the test passing with nothing to check.
const minCorpusFiles = 30

// corpusCase is one file of test/testdata/invalid: a manifest that breaks exactly one
// validation rule, with the substrings the apiserver's error must contain.
type corpusCase struct {
	rule string
	// wants must all appear in the error; at least one is a field path.
	wants []string
	// status writes updates (documents whose object an earlier document created)
	// through the status subresource.
	status bool
}

var (
	headerLine = regexp.MustCompile(`^#\s*(rule|want|subresource):\s*(.*?)\s*$`)
	fieldPath  = regexp.MustCompile(`^(metadata|spec|status)([.\[]|$)`)
)

// parseCorpusHeader reads the leading comment lines of a corpus file.
func parseCorpusHeader(t *testing.T, path string) corpusCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tc corpusCase
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		m := headerLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "rule":
			tc.rule = m[2]
		case "want":
			tc.wants = append(tc.wants, m[2])
		case "subresource":
			if m[2] != "status" {
				t.Fatalf("%s: unknown subresource %q (only status)", path, m[2])
			}
			tc.status = true
		}
	}
	if tc.rule == "" {
		t.Fatalf("%s: no `# rule:` line", path)
	}
	hasPath := false
	for _, w := range tc.wants {
		if w == "" {
			t.Fatalf("%s: empty `# want:` line", path)
		}
		hasPath = hasPath || fieldPath.MatchString(w)
	}
	if !hasPath {
		t.Fatalf("%s: no `# want:` line names a field path (spec..., status..., metadata...)", path)
	}
	return tc
}

// TestInvalidCorpusRejected applies every manifest of test/testdata/invalid and checks
// that the apiserver rejects its last document as Invalid, naming the field and the
// rule. Earlier documents are setup and must be accepted; a document whose object an
// earlier one created is an update.
func TestInvalidCorpusRejected(t *testing.T) {
	files, err := filepath.Glob(repoPath("test", "testdata", "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < minCorpusFiles {
		t.Fatalf("invalid corpus has %d files, want at least %d", len(files), minCorpusFiles)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			tc := parseCorpusHeader(t, path)
			docs := readManifests(t, path)
			ns := env.Namespace(t)
			ctx := t.Context()
			t.Logf("rule: %s", tc.rule)

			created := map[objectKey]bool{}
			var err error
			for i, u := range docs {
				key := keyOf(u)
				placeObject(t, u, ns, ns)
				if created[key] {
					err = updateObject(ctx, t, u, tc.status)
				} else {
					err = createObject(ctx, t, u)
					created[key] = err == nil
				}
				if i < len(docs)-1 && err != nil {
					t.Fatalf("setup document %d (%s %s) was rejected: %v", i, u.GetKind(), u.GetName(), err)
				}
			}

			if err == nil {
				t.Fatalf("the apiserver accepted the manifest; want it rejected (%s)", tc.rule)
			}
			t.Logf("rejected: %v", err)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid (422) error, got %v", err)
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}
