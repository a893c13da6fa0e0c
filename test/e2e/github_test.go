package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	githubWorkflow = "examples/github/retag.yml"
	githubTagEvent = "examples/github/events/push-tag.json"
	// githubShortSHA is the GitHub convention (GITHUB_SHA's first 7).
	githubShortSHA = 7
	// tokenCanary is the workflow's GITHUB_TOKEN secret: it must never be printed.
	tokenCanary = "e2e-canary-token-5f0c1a"
)

// testGitHubUnderAct runs examples/github/retag.yml, which uses
// ./actions/retag (the generated container action running hoist's image),
// on a push of tag v1.4.2, and checks the registry and the step output.
func testGitHubUnderAct(t *testing.T, r *rig) {
	ws := t.TempDir()
	r.copyFiles(t, ws, map[string]string{
		"actions/retag/action.yml": "actions/retag/action.yml",
		githubWorkflow:             githubWorkflow,
		githubTagEvent:             githubTagEvent,
	})
	r.gitRepo(t, ws, "https://github.com/acme/app.git")

	// act takes github.sha from the event's "after", so the source is the
	// image the build workflow pushed for that commit.
	var event struct {
		Ref   string `json:"ref"`
		After string `json:"after"`
	}
	data, err := os.ReadFile(filepath.Join(ws, githubTagEvent))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &event))
	require.Equal(t, "refs/tags/"+releaseTag, event.Ref)
	reg, digest := pushSource(t, event.After[:githubShortSHA])
	repo := reg.Host + "/demo/app"

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	workflow := githubWorkflow
	args := []string{
		"-e", githubTagEvent,
		"--var", "IMAGE=" + repo,
		"--var", "INSECURE_REGISTRIES=" + reg.Host,
		"--secret", "GITHUB_TOKEN=" + tokenCanary,
	}
	start := time.Now()
	out, err := r.act(ctx, t, ws, workflow, args...)
	t.Logf("act ran the release workflow in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "act "+strings.Join(args, " "), out, err)

	requireTags(t, repo, wantTags, digest)
	require.Contains(t, out, "released digest="+digest, "the step after retag did not get its digest output")
	require.Contains(t, out, "image="+repo+"@"+digest)
	require.NotContains(t, out, tokenCanary, "the GITHUB_TOKEN secret was printed")
}
