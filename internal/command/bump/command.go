// Package bump is the bump command: it reads the job's inputs, runs
// components/bump and returns its outputs. actions/bump and the multi-call
// actions/hoist run it. In short: bump rewrites image references in GitOps
// manifests, byte-exact, and lands the commit without losing a concurrent
// update. See docs/bump.md.
package bump

import (
	"context"
	"fmt"
	"net/mail"
	"os"
	"runtime/debug"

	bumpcomponent "github.com/hoist-ci/hoist/components/bump"
	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/spec"
)

// Main is bump's main in the process's environment. It returns the exit code.
func Main() int {
	return ci.Exec(spec.Bump(), Run)
}

// Run runs bump with the job's inputs and returns the outputs.
func Run(ctx context.Context, j *ci.Job) (map[string]string, error) {
	if os.Getenv("GOGC") == "" {
		// bump holds little (the files it edits) and parsing YAML allocates
		// fast: a lower GC target keeps its peak near what it holds (a 3.8 MB
		// bundle: about 15 MiB less; TestLargeFilesCostLittleMemory).
		debug.SetGCPercent(50)
	}
	author, err := mail.ParseAddress(j.String("author"))
	if err != nil {
		return nil, fmt.Errorf("author %q: want `Name <email>`: %v", j.String("author"), err)
	}
	attempts, err := j.Int("max-attempts")
	if err != nil {
		return nil, err
	}
	apiURL := j.String("api-url")
	if apiURL == "" {
		apiURL = j.APIURLFor(j.String("repository"))
	}
	allowNoMatch, err := j.Bool("allow-no-match")
	if err != nil {
		return nil, err
	}
	res, err := bumpcomponent.Run(ctx, bumpcomponent.Options{
		Images:               j.List("images"),
		ImagesFrom:           j.List("images-from"),
		AllowNoMatch:         allowNoMatch,
		Image:                j.String("image"),
		Tag:                  j.String("tag"),
		Digest:               j.String("digest"),
		Paths:                j.List("paths"),
		ValuePaths:           j.List("value-paths"),
		Pin:                  j.String("pin"),
		Mode:                 j.String("mode"),
		Workspace:            j.Workspace(),
		Repository:           j.String("repository"),
		Branch:               j.String("branch"),
		DefaultBranch:        j.Git.DefaultBranch,
		Token:                j.String("token"),
		Username:             j.String("git-username"),
		SSHKey:               j.String("ssh-key"),
		SSHKnownHosts:        j.String("ssh-known-hosts"),
		AuthorName:           author.Name,
		AuthorEmail:          author.Address,
		SigningKey:           j.String("signing-key"),
		SigningKeyPassphrase: j.String("signing-key-passphrase"),
		Message:              j.String("message"),
		MaxAttempts:          attempts,
		Labels:               j.List("labels"),
		Forge:                j.String("forge"),
		APIURL:               apiURL,
		SourceCommit:         j.Git.SHA,
		Log:                  j.Log,
	})
	if res.DryRun && res.Diff != "" {
		j.Print(res.Diff)
	}
	summary := res.Markdown()
	if err != nil {
		// Not "nothing to change": the run stopped.
		summary = "### bump: failed\n\n```\n" + err.Error() + "\n```\n"
		if res.Commit != "" {
			summary += "\nCommit `" + res.Commit + "` was pushed before the failure.\n"
		}
	}
	if serr := j.AddSummary(summary); serr != nil {
		j.Log.Warn("writing the step summary", "error", serr)
	}
	if err != nil {
		return nil, err
	}
	j.Log.Info("bump done", "changed", res.Changed, "files", len(res.Files), "commit", res.Commit, "attempts", res.Attempts)
	return res.Outputs(), nil
}
