package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"nginx", "team/app:1.0@" + dig, "localhost:5000/a/b:c", "[::1]:5000/x", "a@b:c", "A/b", ":", "@", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		// A parsed reference prints back as written and parses the same.
		require.Equal(t, s, r.String())
		r2, err := ParseRef(r.String())
		require.NoError(t, err)
		require.Equal(t, r, r2)
		require.True(t, SameRepo(r.Repo(), r.Repo()))
		if u, err := ParseUpdate(r.Repo()+"=1.0", PinAuto); err == nil {
			require.True(t, u.Matches(r.Repo()))
			require.Equal(t, r.Repo()+":1.0", u.Apply(Ref{Domain: r.Domain, Path: r.Path}).String())
		}
	})
}

// FuzzEdit checks that the editor never corrupts a file: when it edits,
// the result parses, and every line it changed holds an intended value.
func FuzzEdit(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/original/**/*.yaml")
	more, _ := filepath.Glob("testdata/*/original/*.yaml")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(filepath.Base(p), b)
		}
	}
	f.Add("kustomization.yaml", []byte("images:\n- name: team/app\n  newTag: '1'\n  digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\n"))
	f.Add("v.yaml", []byte("a: &x {repository: team/app, tag: 1}\nb: *x\nc: [team/app:1, \"team/app:2\"]\n"))
	opts := Options{}
	for _, e := range []string{"team/app=2.0", "registry.example.com/team/app=registry.example.com/team/app:1.4.2@" + dig, "busybox=@" + dig} {
		u, err := ParseUpdate(e, PinAuto)
		require.NoError(f, err)
		opts.Updates = append(opts.Updates, u)
	}
	vp, _ := ParseValuePath("team/app=global.image.tag")
	opts.ValuePaths = []ValuePath{vp}
	f.Fuzz(func(t *testing.T, name string, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		out, changes, err := Edit(name, src, opts)
		if err != nil || out == nil {
			require.Nil(t, out)
			return
		}
		require.NotEmpty(t, changes)
		_, err = parseDocs(name, out)
		require.NoError(t, err, "the edited file does not parse:\n%s", out)
		trim := func(ls []string) []string {
			for i := range ls {
				ls[i] = strings.TrimRight(ls[i], "\r\n")
			}
			return ls
		}
		a, b := trim(splitLines(string(src))), trim(splitLines(string(out)))
		joined := func(ls []string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }
		for _, bl := range diffBlocks(newLines(joined(a)), newLines(joined(b))) {
			for _, l := range b[bl.b0:bl.b1] {
				require.True(t, lineHolds(l, changes, true), "unintended line added: %q", l)
			}
			for _, l := range a[bl.a0:bl.a1] {
				require.True(t, lineHolds(l, changes, false), "unintended line removed: %q", l)
			}
		}
	})
}

func lineHolds(line string, changes []Change, added bool) bool {
	for _, c := range changes {
		v := c.Old
		if added {
			v = c.New
		}
		if strings.Contains(line, v) || (v == "" && strings.Contains(line, `""`)) {
			return true
		}
	}
	return false
}

func TestVerifyRejectsUnintendedDifferences(t *testing.T) {
	src := []byte("a: 1 # keep\nimage: team/app:1\nlist: [x, y]\n")
	docs, err := parseDocs("v.yaml", src)
	require.NoError(t, err)
	img := docs[0].Content[0].Content[3]
	p := &planner{file: "v.yaml", parents: map[*yaml.Node]*yaml.Node{}}
	p.ops = []*op{{kind: opSet, node: img, value: "team/app:2"}}
	require.NoError(t, p.verify(docs, []byte("a: 1 # keep\nimage: team/app:2\nlist: [x, y]\n"), 1))
	for _, bad := range []string{
		"a: 1\nimage: team/app:3\nlist: [x, y]\n",         // wrong value
		"a: 2\nimage: team/app:2\nlist: [x, y]\n",         // another value changed
		"a: '1'\nimage: team/app:2\nlist: [x, y]\n",       // quoting changed
		"image: team/app:2\na: 1\nlist: [x, y]\n",         // order changed
		"a: 1\nimage: team/app:2\nlist: [x]\n",            // structure changed
		"a: 1\nimage: team/app:2\nlist: [x, y]\n---\nb\n", // a document added
		"a: 1\nimage: \"team/app:2\"\nlist: [x, y]\n",     // style of the edit
	} {
		require.Error(t, p.verify(docs, []byte(bad), 1), bad)
	}
}

// FuzzChunkedEqualsWhole: editing a file document by document gives what
// editing it whole gives (bytes, changes, or an error).
func FuzzChunkedEqualsWhole(f *testing.F) {
	f.Add("a.yaml", []byte("a: 1\n---\nimage: team/app:1\n--- |\n  text\n---\n# c\nimage: team/app:1 # x\n...\n---\n"))
	f.Add("a.yaml", []byte("---\nx: &a {image: team/app:1}\n---\ny: [team/app:1]\n"))
	f.Add("a.yaml", []byte("a: |\n  ---\n---x: 1\n--- \n"))
	u, err := ParseUpdate("team/app=2.0", PinAuto)
	require.NoError(f, err)
	opts := Options{Updates: []Update{u}}
	f.Fuzz(func(t *testing.T, name string, src []byte) {
		if len(src) > 1<<14 {
			return
		}
		got, gotCh, gotErr := Edit(name, src, opts)
		want, wantCh, wantErr := editChunk(name, src, newSource(src), chunk{0, len(src), 1}, opts)
		if wantErr != nil {
			require.Error(t, gotErr, "whole: %v", wantErr)
			return
		}
		require.NoError(t, gotErr)
		require.Equal(t, string(want), string(got))
		require.Equal(t, wantCh, gotCh)
	})
}
