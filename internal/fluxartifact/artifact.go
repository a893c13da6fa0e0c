package fluxartifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a Flux OCI artifact (fluxcd/pkg/oci).
const (
	ConfigMediaType  types.MediaType = "application/vnd.cncf.flux.config.v1+json"
	ContentMediaType types.MediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
)

// Annotations of the artifact's manifest.
const (
	CreatedAnnotation  = "org.opencontainers.image.created"
	SourceAnnotation   = "org.opencontainers.image.source"
	RevisionAnnotation = "org.opencontainers.image.revision"
)

// Tarball writes the tree as Flux's gzipped tarball.
func (t *Tree) Tarball() ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(t.Size()/3) + 4096)
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range t.Files {
		h := &tar.Header{Name: f.Path, Mode: int64(f.Mode.Perm())}
		if f.Dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %s into the tarball: %w", f.Path, err)
		}
		if !f.Dir {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("writing %s into the tarball: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing the tarball: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("closing the tarball: %w", err)
	}
	return buf.Bytes(), nil
}

// Metadata are the manifest's annotations.
type Metadata struct {
	// Created is written as RFC 3339 in UTC.
	Created time.Time
	// Source is where the content comes from (the repository's URL).
	Source string
	// Revision is `<branch|tag>@sha1:<commit>`.
	Revision string
	// Annotations are more annotations; they win over the three above.
	Annotations map[string]string
}

func (m Metadata) annotations() map[string]string {
	a := map[string]string{
		CreatedAnnotation:  m.Created.UTC().Format(time.RFC3339),
		SourceAnnotation:   m.Source,
		RevisionAnnotation: m.Revision,
	}
	maps.Copy(a, m.Annotations)
	return a
}

// Image assembles the artifact from a tarball: an OCI manifest whose config
// is Flux's (an empty image config carrying the created time, media type
// ConfigMediaType) and whose only layer is the tarball (ContentMediaType),
// annotated with meta. The result is the manifest `flux push artifact`
// writes for the same tarball and annotations.
func Image(tarball []byte, meta Metadata) (v1.Image, error) {
	annotations := meta.annotations()
	created, err := time.Parse(time.RFC3339, annotations[CreatedAnnotation])
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %q is not an RFC 3339 time: %w", CreatedAnnotation, annotations[CreatedAnnotation], err)
	}
	cfg, err := empty.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg.Created = v1.Time{Time: created}
	// The config is set before its media type changes: go-containerregistry
	// keeps the raw config of a non-image media type as it is.
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the artifact's config: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ConfigMediaType)
	img = mutate.Annotations(img, annotations).(v1.Image)
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(tarball, ContentMediaType)})
	if err != nil {
		return nil, fmt.Errorf("adding the content layer: %w", err)
	}
	return img, nil
}

// IsArtifact reports whether a manifest is a Flux artifact: Flux's config
// media type and one layer of Flux content.
func IsArtifact(m *v1.Manifest) bool {
	return m != nil && m.Config.MediaType == ConfigMediaType && len(m.Layers) == 1 && m.Layers[0].MediaType == ContentMediaType
}

// ContentDigest is the digest of a Flux artifact's content layer, or the
// zero hash when m is not a Flux artifact.
func ContentDigest(m *v1.Manifest) v1.Hash {
	if !IsArtifact(m) {
		return v1.Hash{}
	}
	return m.Layers[0].Digest
}
