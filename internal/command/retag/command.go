// Package retag is the retag command: it reads the job's inputs, runs
// components/retag and returns its outputs. actions/retag and the multi-call
// actions/hoist run it. In short: retag gives an image already in a registry
// its release tags without rebuilding it. See docs/retag.md.
package retag

import (
	"context"

	retagcomponent "github.com/hoist-ci/hoist/components/retag"
	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/spec"
)

// Main is retag's main in the process's environment. It returns the exit code.
func Main() int {
	return ci.Exec(spec.Retag(), Run)
}

// Run runs retag with the job's inputs and returns the outputs.
func Run(ctx context.Context, j *ci.Job) (map[string]string, error) {
	reg, err := registry.FromInputs(j, spec.UserAgent(), j.Log)
	if err != nil {
		return nil, err
	}
	semverAliases, err := j.Bool("semver-aliases")
	if err != nil {
		return nil, err
	}
	dryRun, err := j.Bool("dry-run")
	if err != nil {
		return nil, err
	}
	res, err := retagcomponent.Run(ctx, retagcomponent.Options{
		Source:            j.String("source"),
		Image:             j.String("image"),
		DefaultRepository: j.DefaultImage(),
		Tags:              j.List("tags"),
		SemverAliases:     semverAliases,
		Latest:            j.String("latest"),
		Destinations:      j.List("destination"),
		ExpectDigest:      j.String("expect-digest"),
		DryRun:            dryRun,
		RefFile:           j.String("ref-file"),
		Git:               j.Git,
		Registry:          reg,
		Log:               j.Log,
	})
	if res.Digest != "" {
		if serr := j.AddSummary(res.Markdown()); serr != nil {
			j.Log.Warn("writing the step summary", "error", serr)
		}
	}
	return res.Outputs(), err
}
