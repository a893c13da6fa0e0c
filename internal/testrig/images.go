package testrig

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushRandomImage pushes a small random single-platform image (two layers)
// to ref (plain HTTP allowed) and returns its descriptor. opts come after
// the test's context, so they may override it.
func PushRandomImage(t testing.TB, ref string, opts ...remote.Option) v1.Descriptor {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatalf("making a random image: %v", err)
	}
	r := parseRef(t, ref)
	if err := remote.Write(r, img, withContext(t, opts)...); err != nil {
		t.Fatalf("pushing a random image to %s: %v", ref, err)
	}
	return describe(t, img)
}

// PushRandomIndex pushes a small random index of two images to ref and
// returns the index's descriptor.
func PushRandomIndex(t testing.TB, ref string, opts ...remote.Option) v1.Descriptor {
	t.Helper()
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatalf("making a random index: %v", err)
	}
	r := parseRef(t, ref)
	if err := remote.WriteIndex(r, idx, withContext(t, opts)...); err != nil {
		t.Fatalf("pushing a random index to %s: %v", ref, err)
	}
	return describe(t, idx)
}

func parseRef(t testing.TB, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("parsing %q: %v", ref, err)
	}
	return r
}

func withContext(t testing.TB, opts []remote.Option) []remote.Option {
	return append([]remote.Option{remote.WithContext(t.Context())}, opts...)
}

func describe(t testing.TB, d partial.Describable) v1.Descriptor {
	t.Helper()
	desc, err := partial.Descriptor(d)
	if err != nil {
		t.Fatalf("describing: %v", err)
	}
	return *desc
}
