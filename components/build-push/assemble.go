package buildpush

import (
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/layer"
)

// assemble makes the final image: the base (or empty) + this build's
// layers, the computed config, labels and annotations.
func (b *builder) assemble(st *dockerfile.State, tags []name.Reference) (v1.Image, error) {
	out := b.out(st)
	var img v1.Image = empty.Image
	if out.base != nil {
		img = out.base
	}
	mt := types.OCIManifestSchema1
	cmt := types.OCIConfigJSON
	if b.o.Format == layer.Docker {
		mt, cmt = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	img = mutate.MediaType(img, mt)
	img = mutate.ConfigMediaType(img, cmt)
	if len(out.layers) > 0 {
		layers := out.layers
		if b.cache != nil {
			layers = make([]v1.Layer, len(out.layers))
			for i, l := range out.layers {
				layers[i] = b.cache.mountable(l)
			}
		}
		var err error
		if img, err = mutate.AppendLayers(img, layers...); err != nil {
			return nil, fmt.Errorf("assembling the image: %w", err)
		}
	}
	cfg := st.Config.DeepCopy()
	created := b.o.Now().UTC()
	if b.o.Epoch != nil {
		created = b.o.Epoch.UTC()
	}
	cfg.Created = v1.Time{Time: created}
	for i := range cfg.History {
		if cfg.History[i].Created.IsZero() {
			cfg.History[i].Created = v1.Time{Time: created}
		}
	}
	labels := gitmeta.OCILabels(b.o.Git, created, titleOf(tags))
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	for k, v := range labels {
		cfg.Config.Labels[k] = v
	}
	for k, v := range b.o.Labels {
		cfg.Config.Labels[k] = v
	}
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("assembling the image config: %w", err)
	}
	ann := map[string]string{}
	if b.o.Format == layer.OCI {
		for k, v := range labels {
			ann[k] = v
		}
	}
	for k, v := range b.o.Annotations {
		ann[k] = v
	}
	if len(ann) > 0 {
		if b.o.Format == layer.Docker && len(b.o.Annotations) > 0 {
			return nil, errors.New("annotations need media-types: oci (Docker manifests have none)")
		}
		img = mutate.Annotations(img, ann).(v1.Image)
	}
	return img, nil
}
