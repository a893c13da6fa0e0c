package manifests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func updates(t *testing.T, entries ...string) Options {
	t.Helper()
	var o Options
	for _, e := range entries {
		u, err := ParseUpdate(e, PinAuto)
		require.NoError(t, err)
		o.Updates = append(o.Updates, u)
	}
	return o
}

func TestEditRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, src, err string
	}{
		{"block scalar target", "image: |\n  team/app:1.0\n# hoist:image=team/app\nx: 1\n", ""},
		{"marked block scalar", "v: | # hoist:image=team/app\n  team/app:1.0\n", "block scalar"},
		{"tagged int", "image:\n  repository: team/app\n  tag: !!int 5\n", "explicit tag !!int"},
		{"flow insert", "images:\n  - {name: team/app}\n", "flow style"},
		{"conflict", "x: team/app:1 # hoist:image=team/app\n", ""},
		{"invalid yaml", "a: b\n  c: d: e\n", "t.yaml: not valid YAML: yaml: line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "t.yaml"
			if strings.Contains(tc.src, "images:") {
				name = "kustomization.yaml"
			}
			out, _, err := Edit(name, []byte(tc.src), updates(t, "team/app=2.0"))
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
			require.Nil(t, out)
		})
	}
}

func TestEditAmbiguousValuePath(t *testing.T) {
	opts := updates(t, "a/app=1", "b/app=2")
	vp, err := ParseValuePath("global.image.tag")
	require.NoError(t, err)
	opts.ValuePaths = []ValuePath{vp}
	_, _, err = Edit("values.yaml", []byte("global:\n  image:\n    tag: 0\n"), opts)
	require.ErrorContains(t, err, `values.yaml:3: value-paths entry "global.image.tag" names no image and there are 2 images entries`)
}

func TestEditConflict(t *testing.T) {
	opts := updates(t, "team/app=1.0", "registry.example.com/team/app=2.0")
	// The first matching entry wins for ordinary references...
	out, _, err := Edit("v.yaml", []byte("image: registry.example.com/team/app:0.9\n"), opts)
	require.NoError(t, err)
	require.Equal(t, "image: registry.example.com/team/app:1.0\n", string(out))
}

func TestEditCRLFAndBOM(t *testing.T) {
	src := "\xef\xbb\xbfimages:\r\n  - name: team/app\r\n    newTag: \"1\"\r\n"
	out, _, err := Edit("kustomization.yaml", []byte(src), updates(t, "team/app=2@"+dig))
	require.NoError(t, err)
	require.Equal(t, "\xef\xbb\xbfimages:\r\n  - name: team/app\r\n    newTag: \"2\"\r\n    digest: "+dig+"\r\n", string(out))
}

func TestEditMultibyteColumns(t *testing.T) {
	src := "é: ü\nlabel: \"ça\" # ünïcode\nimage: team/app:1 # été\n"
	out, _, err := Edit("v.yaml", []byte(src), updates(t, "team/app=2"))
	require.NoError(t, err)
	require.Equal(t, strings.Replace(src, "team/app:1", "team/app:2", 1), string(out))
}

func TestFilesRefusesOutside(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("image: team/app:1\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "deploy"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "deploy", "a.yaml"), []byte("image: team/app:1\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "deploy", "notes.txt"), []byte("image: team/app:1\n"), 0o644))

	files, err := Files(root, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"deploy/a.yaml"}, files)

	_, err = Files(root, []string{"../x"})
	require.ErrorContains(t, err, `paths entry "../x" is outside the repository`)
	_, err = Files(root, []string{outside})
	require.ErrorContains(t, err, "is outside the repository")

	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(root, "deploy", "link.yaml")))
	_, err = Files(root, []string{"deploy"})
	require.ErrorContains(t, err, "outside the repository; refusing to follow it")
	_, err = Files(root, []string{"deploy/link.yaml"})
	require.ErrorContains(t, err, "outside the repository; refusing to follow it")
	_, err = Files(root, []string{"deploy/*.yaml"})
	require.ErrorContains(t, err, "outside the repository; refusing to follow it")
	require.NoError(t, os.Remove(filepath.Join(root, "deploy", "link.yaml")))

	// A symlink inside the repository is followed.
	require.NoError(t, os.Symlink("a.yaml", filepath.Join(root, "deploy", "b.yaml")))
	files, err = Files(root, []string{"deploy/**/*.yaml"})
	require.NoError(t, err)
	require.Equal(t, []string{"deploy/a.yaml", "deploy/b.yaml"}, files)
}

func TestPlanParseErrorNamesFileAndLine(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "bad.yaml"), []byte("image: team/app:1\n  x: [\n"), 0o644))
	_, err := Plan(context.Background(), root, nil, updates(t, "team/app=2"))
	require.ErrorContains(t, err, "bad.yaml: not valid YAML: yaml: line")
	// A template that does not mention the image is not ours to judge.
	require.NoError(t, os.WriteFile(filepath.Join(root, "bad.yaml"), []byte("a: {{ .Values.x }}\n  b: [\n"), 0o644))
	edits, err := Plan(context.Background(), root, nil, updates(t, "team/app=2"))
	require.NoError(t, err)
	require.Empty(t, edits)
	// ...unless it is named.
	_, err = Plan(context.Background(), root, []string{"bad.yaml"}, updates(t, "team/app=2"))
	require.ErrorContains(t, err, "bad.yaml: not valid YAML")
}

func TestUnifiedDiffApplies(t *testing.T) {
	patch, err := exec.LookPath("patch")
	if err != nil {
		if testing.Short() {
			t.Skip("patch not installed")
		}
		t.Fatalf("patch (Debian package patch) is needed: %v", err)
	}
	var old, new []string
	for i := 0; i < 60; i++ {
		old = append(old, "line "+string(rune('a'+i%26)))
	}
	new = append(new, old...)
	new[3] = "changed 3"
	new[10] = "changed 10"
	new[40] = "changed 40"
	new = append(new[:50], new[51:]...)
	for _, tc := range []struct{ a, b string }{
		{strings.Join(old, "\n") + "\n", strings.Join(new, "\n") + "\n"},
		{"a\nb\n", "a\nc\n"},
		{"a\nb", "a\nc"},
		{"x: 1\n", "x: 1\ny: 2\n"},
	} {
		dir := t.TempDir()
		f := filepath.Join(dir, "f.yaml")
		require.NoError(t, os.WriteFile(f, []byte(tc.a), 0o644))
		d := UnifiedDiff("f.yaml", []byte(tc.a), []byte(tc.b))
		cmd := exec.Command(patch, "-p1", "--quiet")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(d)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", out, d)
		got, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Equal(t, tc.b, string(got), d)
	}
	require.Empty(t, UnifiedDiff("f", []byte("a\n"), []byte("a\n")))
}

func TestTreeSelect(t *testing.T) {
	tree := Tree{
		Files: map[string][]byte{"deploy/a.yaml": nil, "deploy/notes.txt": nil, "deploy/sub/b.yml": nil, ".git/config.yaml": nil, "top.yaml": nil},
		Links: map[string]string{"deploy/c.yaml": "a.yaml", "deploy/out.yaml": "../../etc/passwd"},
	}
	_, err := tree.Select(nil)
	require.ErrorContains(t, err, `deploy/out.yaml leads to ../../etc/passwd, outside the repository; refusing to follow it`)
	delete(tree.Links, "deploy/out.yaml")
	files, err := tree.Select(nil)
	require.NoError(t, err)
	require.Equal(t, []string{"deploy/a.yaml", "deploy/sub/b.yml", "top.yaml"}, files, "a link to a selected file is edited once, through its target")
	files, err = tree.Select([]string{"deploy/**/*.yml", "deploy/notes.txt"})
	require.NoError(t, err)
	require.Equal(t, []string{"deploy/notes.txt", "deploy/sub/b.yml"}, files)
	_, err = tree.Select([]string{"../x"})
	require.ErrorContains(t, err, "outside the repository")
	_, err = tree.Select([]string{"/etc"})
	require.ErrorContains(t, err, "relative to the repository")
	_, err = tree.Select([]string{"nope/"})
	require.ErrorContains(t, err, `paths entry "nope/": no such file or directory`)
	tree.Links["abs.yaml"] = "/etc/passwd"
	_, err = tree.Select([]string{"abs.yaml"})
	require.ErrorContains(t, err, "outside the repository")
}
