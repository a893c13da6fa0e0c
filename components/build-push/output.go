package buildpush

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/hoist-ci/hoist/internal/registry"
)

// artifact is what a build produces: an image, or an index of images.
type artifact struct {
	img v1.Image
	idx v1.ImageIndex
}

func (a artifact) digest() (v1.Hash, error) {
	if a.idx != nil {
		return a.idx.Digest()
	}
	return a.img.Digest()
}

// write pushes to every destination (blobs first, each tag after every
// blob is present: go-containerregistry writes the manifest last) and
// writes the local outputs.
func (b *build) write(ctx context.Context, art artifact) error {
	tags := b.tags
	if b.o.Push {
		var first name.Reference
		var mounted *artifact
		for _, t := range tags {
			target := art
			if first != nil && t.Context().RegistryStr() == first.Context().RegistryStr() && t.Context().Name() != first.Context().Name() {
				// The same manifest read back from the first destination:
				// its layers are remote, so the push mounts them.
				if mounted == nil {
					opts := b.links.forTarget()
					if art.idx != nil {
						if r, err := remote.Index(first, opts...); err == nil {
							mounted = &artifact{idx: r}
						}
					} else if r, err := remote.Image(first, opts...); err == nil {
						mounted = &artifact{img: r}
					}
				}
				if mounted != nil {
					target = *mounted
				}
			}
			if err := b.push(ctx, t, target); err != nil {
				return b.o.Registry.Explain(fmt.Errorf("pushing %s: %w", t, err), t.Context(), registry.Push)
			}
			if first == nil {
				first = t
			}
		}
	}
	if b.o.TarPath != "" {
		if art.idx != nil {
			return errors.New("tar-path holds one image: with several platforms use oci-layout-path")
		}
		var ref name.Reference
		if len(tags) > 0 {
			ref = tags[0]
		} else {
			r, err := name.ParseReference("image:latest")
			if err != nil {
				return err
			}
			ref = r
		}
		refs := map[name.Reference]v1.Image{ref: art.img}
		for _, t := range tags[min(1, len(tags)):] {
			refs[t] = art.img
		}
		if err := tarball.MultiRefWriteToFile(b.o.TarPath, refs); err != nil {
			return fmt.Errorf("writing tar-path %s: %w", b.o.TarPath, err)
		}
	}
	if b.o.OCILayoutPath != "" {
		p, err := layout.FromPath(b.o.OCILayoutPath)
		if err != nil {
			if p, err = layout.Write(b.o.OCILayoutPath, empty.Index); err != nil {
				return fmt.Errorf("writing oci-layout-path %s: %w", b.o.OCILayoutPath, err)
			}
		}
		if art.idx != nil {
			err = p.AppendIndex(art.idx)
		} else {
			err = p.AppendImage(art.img)
		}
		if err != nil {
			return fmt.Errorf("writing oci-layout-path %s: %w", b.o.OCILayoutPath, err)
		}
	}
	return nil
}

// push writes one destination, logging progress (bytes, rate). In a
// reproducible build (Epoch set) a tag that already holds the artifact's
// digest is left as it is: a rerun moves no tag and writes no manifest (a
// registry with immutable tags, Harbor's say, would refuse the write).
// Without Epoch the digest holds the build's time, so no tag can hold it
// and the HEAD is not spent.
func (b *build) push(ctx context.Context, t name.Reference, art artifact) error {
	if digest, err := art.digest(); err == nil && b.o.Epoch != nil {
		if d, herr := remote.Head(t, b.links.forTarget(remote.WithContext(ctx))...); herr == nil && d.Digest == digest {
			b.o.Log.Info("already at "+digest.String()+": not written again", "tag", t.String())
			return nil
		}
	}
	updates := make(chan v1.Update, 64)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		var last v1.Update
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					return
				}
				last = u
			case <-tick.C:
				b.o.Log.Info("pushing", "tag", t.String(), "bytes", last.Complete, "of", last.Total, "rate", rate(last.Complete, time.Since(start)))
			}
		}
	}()
	opts := b.links.forTarget(remote.WithProgress(updates))
	var err error
	if art.idx != nil {
		err = remote.WriteIndex(t, art.idx, opts...)
	} else {
		err = remote.Write(t, art.img, opts...)
	}
	<-done
	if err != nil {
		return err
	}
	b.o.Log.Info("pushed", "tag", t.String(), "elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/d.Seconds()/1e6)
}

func writeFiles(o Options, res Result, tags []name.Reference) error {
	if o.DigestFile != "" {
		if err := os.WriteFile(o.DigestFile, []byte(res.Digest), 0o644); err != nil {
			return fmt.Errorf("writing digest-file %s: %w", o.DigestFile, err)
		}
	}
	if o.RefFile != "" {
		if res.Ref == "" {
			return fmt.Errorf("ref-file %s: this build has no destination, so no reference to write: set tags or image", o.RefFile)
		}
		if err := os.WriteFile(o.RefFile, []byte(res.Ref+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing ref-file %s: %w", o.RefFile, err)
		}
	}
	if o.ImageNameWithDigestFile != "" {
		var lines []string
		for _, t := range tags {
			lines = append(lines, t.Context().Name()+"@"+res.Digest)
		}
		if err := os.WriteFile(o.ImageNameWithDigestFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing image-name-with-digest-file %s: %w", o.ImageNameWithDigestFile, err)
		}
	}
	return nil
}
