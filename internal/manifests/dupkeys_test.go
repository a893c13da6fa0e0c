package manifests

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A mapping with one key twice is refused with the file and line: editing
// the first of two image keys would leave the deployed one (the last, for
// kubectl) unchanged.
func TestDuplicateKeysAreRefused(t *testing.T) {
	opts := Options{Updates: []Update{mustUpdate(t, "registry.example.com/team/app=1.4.2")}}
	tests := []struct {
		name, src, want string
	}{
		{"two image keys in a container", `apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/team/app:1.4.1
          image: registry.example.com/team/app:1.0.0
`, `deploy.yaml:9: duplicate mapping key "image" (first at line 8)`},
		{"in a later document", "a: 1\n---\nimages:\n  - name: registry.example.com/team/app\n    newTag: \"1\"\n    newTag: \"2\"\n",
			`deploy.yaml:6: duplicate mapping key "newTag" (first at line 5)`},
		{"top level, quoted the other way", "kind: Deployment\n\"kind\": Service\n", `deploy.yaml:2: duplicate mapping key "kind" (first at line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := Edit("deploy.yaml", []byte(tt.src), opts)
			require.Nil(t, out)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "remove one of them")
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
		})
	}
	// Merge keys may repeat; the same key in two mappings is no duplicate.
	ok := "base: &b {x: 1}\nother: &o {y: 2}\nm:\n  <<: *b\n  <<: *o\nlist:\n  - image: registry.example.com/team/app:1.4.1\n  - image: registry.example.com/team/app:1.4.1\n"
	out, changes, err := Edit("ok.yaml", []byte(ok), opts)
	require.NoError(t, err)
	require.Len(t, changes, 2)
	require.Contains(t, string(out), "app:1.4.2")
}

func mustUpdate(t *testing.T, entry string) Update {
	t.Helper()
	u, err := ParseUpdate(entry, "")
	require.NoError(t, err)
	return u
}
