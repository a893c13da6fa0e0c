package dockerfile

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/require"
)

func readBase(t *testing.T) *v1.ConfigFile {
	t.Helper()
	data, err := os.ReadFile("testdata/base/hoist-rig-busybox.json")
	require.NoError(t, err)
	var cf v1.ConfigFile
	require.NoError(t, json.Unmarshal(data, &cf))
	return &cf
}

// evaluate runs a plan with a fake builder: bases come from testdata/base,
// every COPY/ADD adds one layer.
func evaluate(t *testing.T, dir string, opts Options) (*State, []*Copy) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	require.NoError(t, err)
	f, err := Parse(filepath.Join(dir, "Dockerfile"), src)
	require.NoError(t, err)
	p, err := NewPlan(f, opts)
	require.NoError(t, err)
	var ops []*Copy
	made := map[string]bool{}
	states, err := p.Run(context.Background(), Hooks{
		Base: func(_ context.Context, s *Stage) (*v1.ConfigFile, error) {
			require.True(t, strings.HasPrefix(s.Base, "hoist-rig/busybox"), s.Base)
			return readBase(t), nil
		},
		Op: func(_ context.Context, st *State, op Op) error {
			if w, ok := op.(*Workdir); ok {
				// What the builder does: a layer only when it knows the
				// directory is missing (a scratch-rooted stage).
				if !st.ScratchRooted() || made[w.Path] {
					return nil
				}
				made[w.Path] = true
				st.Config.RootFS.DiffIDs = append(st.Config.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)})
				return nil
			}
			c := op.(*Copy)
			ops = append(ops, c)
			st.Config.RootFS.DiffIDs = append(st.Config.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)})
			st.AddLayerHistory(c.Instruction)
			return nil
		},
	})
	require.NoError(t, err)
	return states[p.Target], ops
}

// normalise keeps what generate.sh keeps.
func normalise(t *testing.T, cf *v1.ConfigFile) map[string]any {
	t.Helper()
	data, err := json.Marshal(cf)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	out := map[string]any{}
	for _, k := range []string{"architecture", "os", "variant", "author"} {
		if v, ok := m[k]; ok && v != "" {
			out[k] = v
		}
	}
	cfg := map[string]any{}
	if c, ok := m["config"].(map[string]any); ok {
		for k, v := range c {
			cfg[k] = v
		}
	}
	out["config"] = cfg
	out["layers"] = float64(len(cf.RootFS.DiffIDs))
	return out
}

func readLines(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestGolden compares the image config hoist computes with the one a real
// `docker build` (BuildKit) produced for the same Dockerfile.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*/Dockerfile")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, df := range dirs {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			opts := Options{BuildArgs: map[string]string{}}
			for _, l := range readLines(t, filepath.Join(dir, "build-args")) {
				k, v, _ := strings.Cut(l, "=")
				opts.BuildArgs[k] = v
			}
			if tg := readLines(t, filepath.Join(dir, "target")); len(tg) > 0 {
				opts.Target = tg[0]
			}
			st, _ := evaluate(t, dir, opts)
			got := normalise(t, &st.Config)
			data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			require.NoError(t, err)
			var want map[string]any
			require.NoError(t, json.Unmarshal(data, &want))
			// Layer contents are compared by components/build-push's TestGoldenImages.
			delete(want, "layer_entries")
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			require.NoError(t, err)
			wantJSON, err := json.MarshalIndent(want, "", "  ")
			require.NoError(t, err)
			require.Equal(t, string(wantJSON), string(gotJSON))
		})
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"run ssh mount", "FROM scratch\nCOPY a /a\nRUN --mount=type=ssh echo hi\n", "Dockerfile:3: RUN --mount: type=ssh is not supported"},
		{"run security", "FROM scratch\nRUN --security=insecure echo hi\n", "Dockerfile:2: RUN --security=insecure is not supported"},
		{"run cache without target", "FROM scratch\nRUN --mount=type=cache echo hi\n", "Dockerfile:2: RUN --mount: type=cache needs a target"},
		{"run forward mount", "FROM scratch AS a\nRUN --mount=from=b,target=/x true\nFROM scratch AS b\nFROM a\n", "Dockerfile:2: RUN --mount=from=b names this stage or a later one"},
		{"unknown", "FROM scratch\nFROBNICATE x\n", "Dockerfile:2: "},
		{"no from", "ARG X=1\n", "no FROM"},
		{"bad chmod", "FROM scratch\nCOPY --chmod=9z a /a\n", "Dockerfile:2: COPY --chmod=9z: invalid octal mode"},
		{"bad flag", "FROM scratch\nCOPY --frobs=1 a /a\n", "Dockerfile:2: "},
		{"copy checksum", "FROM scratch\n\nCOPY --chmod=u+x a /a\nLABEL x=1\nSTOPSIGNAL SIGNOPE\n", "Dockerfile:5: STOPSIGNAL SIGNOPE"},
		{"empty from", "ARG BASE\nFROM $BASE\n", "Dockerfile:2: FROM $BASE expands to an empty image name"},
		{"forward copy", "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nFROM a\n", "Dockerfile:2: COPY --from=b names this stage or a later one"},
		{"onbuild chain", "FROM scratch\nONBUILD ONBUILD LABEL x=1\n", "Dockerfile:2: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := run(t, c.src, Options{})
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func run(t *testing.T, src string, opts Options) error {
	t.Helper()
	f, err := Parse("Dockerfile", []byte(src))
	if err != nil {
		return err
	}
	p, err := NewPlan(f, opts)
	if err != nil {
		return err
	}
	_, err = p.Run(context.Background(), Hooks{
		Base: func(context.Context, *Stage) (*v1.ConfigFile, error) { return readBase(t), nil },
		Op:   func(context.Context, *State, Op) error { return nil },
	})
	return err
}

func TestTargetSkipsUnusedStages(t *testing.T) {
	src := "FROM scratch AS a\nRUN --mount=type=ssh never\nFROM scratch AS b\nCOPY x /x\nFROM b AS c\nCOPY --from=b /x /y\n"
	f, err := Parse("Dockerfile", []byte(src))
	require.NoError(t, err)
	p, err := NewPlan(f, Options{})
	require.NoError(t, err)
	var names []string
	for _, s := range p.Stages {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"b", "c"}, names)
	require.NoError(t, run(t, src, Options{}), "the RUN in the unused stage is never evaluated")
	require.ErrorContains(t, run(t, src, Options{Target: "a"}), "Dockerfile:2: RUN")
	_, err = NewPlan(f, Options{Target: "nope"})
	require.ErrorContains(t, err, `target "nope": no such stage in Dockerfile; stages: a, b, c`)
}

func TestHeredocAndCopyOps(t *testing.T) {
	src := "FROM scratch\nARG NAME=world\nWORKDIR /srv\nCOPY <<EOF greeting.txt\nhello $NAME\nEOF\nCOPY <<'EOF' raw.txt\nhello $NAME\nEOF\nCOPY --chown=app:app --chmod=go-w a b dir/\nADD --checksum=sha256:abc https://example.com/x.tgz /x.tgz\n"
	f, err := Parse("Dockerfile", []byte(src))
	require.NoError(t, err)
	p, err := NewPlan(f, Options{BuildArgs: map[string]string{"NAME": "hoist"}})
	require.NoError(t, err)
	var ops []*Copy
	_, err = p.Run(context.Background(), Hooks{Op: func(_ context.Context, _ *State, op Op) error {
		if c, ok := op.(*Copy); ok {
			ops = append(ops, c)
		}
		return nil
	}})
	require.NoError(t, err)
	require.Len(t, ops, 4)
	require.Equal(t, "hello hoist\n", ops[0].Inline[0].Data)
	require.Equal(t, "/srv/greeting.txt", ops[0].Dest)
	require.Equal(t, map[string]string{"NAME": "hoist"}, ops[0].Vars)
	require.Equal(t, "hello $NAME\n", ops[1].Inline[0].Data)
	require.Equal(t, "/srv/dir", ops[2].Dest)
	require.True(t, ops[2].DestDir)
	require.Equal(t, "app:app", ops[2].Chown)
	require.Equal(t, "COPY --chown=app:app --chmod=go-w a b /srv/dir/", ops[2].Instruction)
	require.True(t, ops[3].Add)
	require.Equal(t, "sha256:abc", ops[3].Checksum)
}

func TestArgScopes(t *testing.T) {
	src := "ARG V=meta\nARG TARGETARCH\nFROM scratch\nLABEL before=${V:-unset}\nARG V\nLABEL after=$V arch=${TARGETARCH:-none}\nARG TARGETARCH\nLABEL arch2=$TARGETARCH\nENV V=env\nARG V=argdefault\nLABEL envwins=$V\n"
	f, err := Parse("Dockerfile", []byte(src))
	require.NoError(t, err)
	p, err := NewPlan(f, Options{TargetPlatform: v1.Platform{OS: "linux", Architecture: "arm64"}, BuildArgs: map[string]string{"UNUSED": "1"}})
	require.NoError(t, err)
	states, err := p.Run(context.Background(), Hooks{})
	require.NoError(t, err)
	labels := states[p.Target].Config.Config.Labels
	// An ARG after an ENV of the same name sets the variable again for
	// what follows, as BuildKit's state does (test/differential
	// env-then-arg checks it against BuildKit).
	require.Equal(t, map[string]string{"before": "unset", "after": "meta", "arch": "none", "arch2": "arm64", "envwins": "argdefault"}, labels)
	require.Equal(t, "arm64", states[p.Target].Config.Architecture)
	require.Equal(t, []string{"UNUSED"}, p.UnusedBuildArgs())
}

func TestChmod(t *testing.T) {
	cases := []struct {
		spec  string
		cur   fs.FileMode
		dir   bool
		want  fs.FileMode
		error bool
	}{
		{"0755", 0o600, false, 0o755, false},
		{"644", 0o777, true, 0o644, false},
		{"4755", 0, false, 0o755 | fs.ModeSetuid, false},
		{"u=rwx,go=rx", 0o600, false, 0o755, false},
		{"+x", 0o644, false, 0o755, false},
		{"go-w", 0o666, false, 0o644, false},
		{"a+X", 0o644, true, 0o755, false},
		{"a+X", 0o644, false, 0o644, false},
		{"a+X", 0o744, false, 0o755, false},
		{"u+s", 0o755, false, 0o755 | fs.ModeSetuid, false},
		{"o=", 0o777, false, 0o770, false},
		{"q+x", 0, false, 0, true},
		{"u+z", 0, false, 0, true},
		{"999", 0, false, 0, true},
	}
	for _, c := range cases {
		m, err := ParseChmod(c.spec)
		if c.error {
			require.Error(t, err, c.spec)
			continue
		}
		require.NoError(t, err, c.spec)
		require.Equal(t, c.want, m.Apply(c.cur, c.dir), "%s on %v", c.spec, c.cur)
	}
}

func FuzzParse(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/golden/*/Dockerfile")
	for _, d := range dirs {
		data, _ := os.ReadFile(d)
		f.Add(string(data))
	}
	f.Add("FROM scratch\nCOPY <<EOF /x\nhi\nEOF\n")
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("Dockerfile", []byte(src))
		if err != nil {
			return
		}
		p, err := NewPlan(file, Options{})
		if err != nil {
			return
		}
		_, _ = p.Run(context.Background(), Hooks{
			Base: func(context.Context, *Stage) (*v1.ConfigFile, error) { return &v1.ConfigFile{}, nil },
			Op:   func(context.Context, *State, Op) error { return nil },
		})
	})
}

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]v1.Platform{
		"linux/arm64":    {OS: "linux", Architecture: "arm64"},
		"linux/arm/v7":   {OS: "linux", Architecture: "arm", Variant: "v7"},
		" linux/s390x ":  {OS: "linux", Architecture: "s390x"},
		"windows/amd64":  {OS: "windows", Architecture: "amd64"},
		"linux/arm64/v8": {OS: "linux", Architecture: "arm64", Variant: "v8"},
	} {
		got, err := ParsePlatform(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "arm64", "linux/", "linux/arm/v7/x"} {
		_, err := ParsePlatform(in)
		require.ErrorContains(t, err, "want os/arch[/variant]", in)
	}
}
