package publish

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ManifestsFile is the file a kustomize build is written to.
const ManifestsFile = "manifests.yaml"

// render returns the directory to package: src itself for render none,
// else a directory under stage holding what was rendered.
func render(ctx context.Context, opts Options, src, stage string) (string, error) {
	switch opts.renderMode() {
	case RenderKustomize:
		return renderKustomize(opts, src, stage)
	case RenderHelm:
		return renderHelm(ctx, opts, src, stage)
	default:
		return src, nil
	}
}

// renderKustomize builds the overlay at src in-process, as `kustomize
// build` does with its defaults: the same resource order, load restrictions to the kustomization
// roots, no exec or container plugins, no Helm chart inflation.
func renderKustomize(opts Options, src, stage string) (string, error) {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(src, name)); err == nil {
			goto found
		}
	}
	return "", fmt.Errorf("input \"path\": %s has no kustomization.yaml, so render: kustomize has nothing to build (render: none packages a directory as it is)", opts.Path)
found:
	ko := krusty.MakeDefaultOptions()
	// As the kustomize CLI: the kustomization's sortOptions, else the
	// legacy order (namespaces, CRDs, config before workloads).
	ko.Reorder = krusty.ReorderOptionUnspecified
	k := krusty.MakeKustomizer(ko)
	resources, err := k.Run(filesys.MakeFsOnDisk(), src)
	if err != nil {
		return "", fmt.Errorf("kustomize build %s: %w", opts.Path, err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		return "", fmt.Errorf("kustomize build %s: writing the resources: %w", opts.Path, err)
	}
	dir := filepath.Join(stage, "content")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestsFile), out, 0o644); err != nil {
		return "", fmt.Errorf("writing the kustomize build: %w", err)
	}
	opts.Log.Info("kustomize build", "path", opts.Path, "resources", resources.Size(), "bytes", len(out))
	return dir, nil
}
