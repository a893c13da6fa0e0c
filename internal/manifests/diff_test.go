package manifests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A diff too large for the LCS table (a bump across a large bundle) is
// still exact: it applies with patch(1) and shows only the changed lines.
func TestUnifiedDiffOfALargeBundle(t *testing.T) {
	patch, err := exec.LookPath("patch")
	if err != nil {
		t.Fatalf("patch (Debian package patch) is needed: %v", err)
	}
	var old, new strings.Builder
	changed := 0
	for i := range 600 {
		doc := fmt.Sprintf("---\nkind: Deployment\nmetadata:\n  name: app-%d\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1.0.0\n", i)
		old.WriteString(doc)
		switch i % 3 {
		case 0: // a value changed
			doc = strings.Replace(doc, "app:1.0.0", "app:2.0.0", 1)
			changed += 2
		case 1: // a line added
			doc += "      imagePullPolicy: Always\n"
			changed++
		}
		new.WriteString(doc)
	}
	a, b := old.String(), new.String()
	require.Greater(t, len(splitLines(a))*len(splitLines(b)), lcsCells, "the large-input path")
	d := UnifiedDiff("f.yaml", []byte(a), []byte(b))
	n := 0
	for _, l := range strings.Split(d, "\n") {
		if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") {
			n++
		}
	}
	require.Equal(t, changed, n, "only the changed lines")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.yaml"), []byte(a), 0o644))
	cmd := exec.Command(patch, "-p1", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(d)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got, err := os.ReadFile(filepath.Join(dir, "f.yaml"))
	require.NoError(t, err)
	require.Equal(t, b, string(got))
}

// Documents are edited one at a time; lines and errors still count from
// the top of the file, and a file with directives is read whole.
func TestMultiDocumentFilesKeepTheirLines(t *testing.T) {
	opts := Options{Updates: []Update{mustUpdate(t, "registry.example.com/team/app=1.4.2")}}
	src := "# bundle\na: 1\n---\nb: 2\n--- # third\nspec:\n  image: registry.example.com/team/app:1.4.1\n---\nimage: registry.example.com/team/app:1.4.1\n...\n"
	require.Len(t, splitDocuments([]byte(src)), 4)
	out, changes, err := Edit("b.yaml", []byte(src), opts)
	require.NoError(t, err)
	require.Equal(t, strings.ReplaceAll(src, "1.4.1", "1.4.2"), string(out))
	require.Equal(t, []int{7, 9}, []int{changes[0].Line, changes[1].Line})

	_, _, err = Edit("b.yaml", []byte("a: 1\n---\nb: [\n"), opts)
	require.ErrorContains(t, err, "b.yaml: not valid YAML: yaml: line 3")
	_, _, err = Edit("b.yaml", []byte("a: 1\n---\nb: 2\nb: 3\n"), opts)
	require.ErrorContains(t, err, "b.yaml:4: duplicate mapping key \"b\" (first at line 3)")

	directives := "%YAML 1.1\n---\nimage: registry.example.com/team/app:1.4.1\n"
	require.Len(t, splitDocuments([]byte(directives)), 1)
	out, _, err = Edit("d.yaml", []byte(directives), opts)
	require.NoError(t, err)
	require.Contains(t, string(out), "app:1.4.2")
	// "---" inside a line or indented is no document marker.
	require.Len(t, splitDocuments([]byte("a: ---\nb: |\n  ---\n")), 1)
}
