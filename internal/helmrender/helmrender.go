// Package helmrender renders a Helm chart to plain manifests as `helm
// template --include-crds --skip-tests --output-dir` does, with Helm v4's
// own library (helm.sh/helm/v4 v4.3.2): dependency conditions and
// import-values, values.schema.json, kubeVersion checks, CRDs, hooks in
// their files, NOTES.txt left out, no cluster contacted.
//
// The library links the Kubernetes client packages, which cost about
// 35 MB of binary and 40 ms of start-up; only the publish-helm binary
// imports this package, and publish runs it when a chart is rendered.
package helmrender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
)

// Request is a chart to render.
type Request struct {
	Chart     string
	Out       string
	Release   string
	Namespace string
	Values    map[string]any
}

// Render writes the chart's manifests under req.Out, one file per template
// (req.Out/<chart>/templates/<file>), hooks other than tests included.
func Render(ctx context.Context, req Request) error {
	ch, err := loader.Load(req.Chart)
	if err != nil {
		return fmt.Errorf("loading the chart: %w", err)
	}
	acc, err := chart.NewAccessor(ch)
	if err != nil {
		return err
	}
	if deps := acc.MetaDependencies(); len(deps) > 0 {
		if err := action.CheckDependencies(ch, deps); err != nil {
			return fmt.Errorf("%w (run helm dependency build, or vendor them under charts/)", err)
		}
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	in := action.NewInstall(cfg)
	in.DryRunStrategy = action.DryRunClient
	in.Replace = true
	in.ReleaseName = req.Release
	in.Namespace = req.Namespace
	in.IncludeCRDs = true
	in.OutputDir = req.Out
	values := req.Values
	if values == nil {
		values = map[string]any{}
	}
	rel, err := in.RunWithContext(ctx, ch, values)
	if err != nil {
		return err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return errors.New("helm returned a release of an unknown version")
	}
	written := map[string]bool{}
	for _, h := range r.Hooks {
		if slices.Contains(h.Events, release.HookTest) {
			continue
		}
		if err := appendManifest(filepath.Join(req.Out, filepath.FromSlash(h.Path)), h.Path, h.Manifest, written); err != nil {
			return err
		}
	}
	return nil
}

// appendManifest adds a document to a file as helm template lays them out:
// "---", a "# Source:" comment, the manifest.
func appendManifest(file, source, manifest string, written map[string]bool) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if _, err := os.Stat(file); err == nil {
		written[file] = true
	}
	f, err := os.OpenFile(file, flags, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "---\n# Source: %s\n%s\n", source, manifest)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
