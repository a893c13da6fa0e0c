package bump

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

// TestWhatMatchesNothing: bump fails — naming the input, the value and the
// fix, and committing nothing — when a paths glob or an images-from item
// selects no file or no selected file references an image; allow-no-match
// turns each into a warning. Bare references and images-from feed images.
func TestWhatMatchesNothing(t *testing.T) {
	const app = "registry.example.com/team/app"
	for _, tc := range []struct {
		name  string
		edit  func(o *Options, ws string)
		allow bool
		// err is the failure without allow-no-match; warn the warning with it.
		err, warn string
		// files changed when the run passes.
		files []string
	}{
		{name: "a bare reference bumps its repository",
			edit:  func(o *Options, _ string) { o.Images = []string{app + ":1.4.2@" + dig} },
			files: []string{"base/deployment.yaml", "overlays/prod/kustomization.yaml"}},
		{name: "images-from: every non-empty line of every file, globs too",
			edit: func(o *Options, ws string) {
				write(t, ws, "refs/app.ref", "\n"+app+":1.4.2@"+dig+"\n\n")
				write(t, ws, "refs/other.ref", "registry.example.com/team/worker:7\n")
				write(t, ws, "more.ref", app+"=1.4.2\n")
				write(t, ws, "workers.yaml", "") // not a ref file
				o.Images, o.ImagesFrom = nil, []string{"refs/*.ref", "more.ref"}
				o.AllowNoMatch = true // worker is referenced nowhere
			},
			files: []string{"base/deployment.yaml", "overlays/prod/kustomization.yaml"}},
		{name: "a typo in the image name",
			edit: func(o *Options, _ string) { o.Images = []string{"registry.example.com/team/ap=1.4.2"} },
			err:  `images entry "registry.example.com/team/ap=1.4.2": no file under the repository references registry.example.com/team/ap, so nothing would deploy it: check the image name (with or without the registry host, as the manifests write it) and paths; or set allow-no-match: true to let bump pass`,
			warn: "no file under the repository references registry.example.com/team/ap"},
		{name: "an image outside the selected paths",
			edit: func(o *Options, _ string) {
				o.Paths = []string{"overlays/**/*.yaml"}
				o.Images = []string{"registry.example.com/team/worker=2"}
			},
			err:  `no file under paths overlays/**/*.yaml references registry.example.com/team/worker`,
			warn: `no file under paths overlays/**/*.yaml references registry.example.com/team/worker`},
		{name: "a paths glob that matches nothing",
			edit:  func(o *Options, _ string) { o.Paths = []string{"overlays/prod/*.yaml", "overlay/**/*.yaml"} },
			err:   `paths entry "overlay/**/*.yaml" matches no file in the repository: check the glob (relative to the repository root, ** for any depth); or set allow-no-match: true`,
			warn:  `paths entry "overlay/**/*.yaml" matches no file in the repository`,
			files: []string{"overlays/prod/kustomization.yaml"}},
		{name: "an images-from file that does not exist",
			edit: func(o *Options, _ string) { o.ImagesFrom = []string{"build/*.ref"} },
			err:  `images-from "build/*.ref" matches no file: check the path (relative to the workspace) and that the job that writes it ran and passed it on as an artifact; or set allow-no-match: true`,
			warn: `images-from "build/*.ref" matches no file`,
			// images still holds app=1.4.2
			files: []string{"base/deployment.yaml", "overlays/prod/kustomization.yaml"}},
		{name: "several at once are listed together",
			edit: func(o *Options, _ string) {
				o.Paths = []string{"nowhere/*.yaml", "base"}
				o.Images = []string{app + "=1.4.2", "registry.example.com/team/ap=1"}
			},
			err:   "nothing matched for 2 inputs, so bump stops (set allow-no-match: true to let it pass):\n- paths entry \"nowhere/*.yaml\" matches no file",
			warn:  `images entry "registry.example.com/team/ap=1": no file under paths nowhere/*.yaml, base references registry.example.com/team/ap`,
			files: []string{"base/deployment.yaml"}},
		{name: "images-from that gives nothing, allowed: nothing to do",
			edit: func(o *Options, _ string) { o.Images, o.ImagesFrom = nil, []string{"build/*.ref"} },
			err:  `images-from "build/*.ref" matches no file`,
			warn: "images-from gave no image and nothing else is to be bumped: nothing to do"},
	} {
		for _, allow := range []bool{false, true} {
			if tc.err == "" && !allow && tc.warn == "" {
				// passes either way: run once, without allow-no-match
			} else if tc.err == "" && allow {
				continue
			}
			name := tc.name
			if allow {
				name += "/allow-no-match"
			}
			t.Run(name, func(t *testing.T) {
				bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
				ws := t.TempDir()
				o := opts(bare)
				o.Workspace = ws
				var logs bytes.Buffer
				o.Log = slog.New(slog.NewTextHandler(&logs, nil))
				tc.edit(&o, ws)
				o.AllowNoMatch = o.AllowNoMatch || allow
				res, err := Run(context.Background(), o)
				if tc.err != "" && !allow {
					require.ErrorContains(t, err, tc.err)
					require.Len(t, gittest.Log(t, bare, "main"), 1, "nothing is committed")
					return
				}
				require.NoError(t, err)
				require.Contains(t, strings.ReplaceAll(logs.String(), `\"`, `"`), tc.warn)
				require.Equal(t, tc.files, res.Files)
				require.Equal(t, len(tc.files) > 0, res.Changed)
			})
		}
	}
}

// TestRerunAtTheNewReferencePasses: an image already at its new reference
// is referenced, so an idempotent rerun passes without allow-no-match, in
// a commit and in a dry run of the checkout.
func TestRerunAtTheNewReferencePasses(t *testing.T) {
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
	o := opts(bare)
	o.Images = []string{"registry.example.com/team/app:1.4.2@" + dig}
	for i := range 2 {
		res, err := Run(context.Background(), o)
		require.NoError(t, err, "run %d", i+1)
		require.Equal(t, i == 0, res.Changed)
	}
	ws := t.TempDir()
	gittest.Git(t, ws, "clone", "-q", bare, "checkout")
	o.Repository, o.Mode, o.Workspace = "", ModeDryRun, filepath.Join(ws, "checkout")
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.False(t, res.Changed)
	o.Images = []string{"registry.example.com/team/ap:1.4.2"}
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "no file under the repository references registry.example.com/team/ap")
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}
