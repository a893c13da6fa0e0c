package manifests

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const dig = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "nginx", want: Ref{Path: "nginx"}},
		{in: "nginx:1.27", want: Ref{Path: "nginx", Tag: "1.27"}},
		{in: "team/app:1.0@" + dig, want: Ref{Path: "team/app", Tag: "1.0", Digest: dig}},
		{in: "localhost:5000/app", want: Ref{Domain: "localhost:5000", Path: "app"}},
		{in: "localhost/app:v1", want: Ref{Domain: "localhost", Path: "app", Tag: "v1"}},
		{in: "registry.example.com/team/app@" + dig, want: Ref{Domain: "registry.example.com", Path: "team/app", Digest: dig}},
		{in: "[::1]:5000/app:1", want: Ref{Domain: "[::1]:5000", Path: "app", Tag: "1"}},
		{in: "", err: "empty"},
		{in: "App:1", err: "repository"},
		{in: "app:-x", err: "tag"},
		{in: "app@sha256:12", err: "digest"},
		{in: "{{ .Values.image }}", err: "repository"},
		{in: "registry.example.com/team/app:1.0 # x", err: "tag"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRef(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in, got.String())
		})
	}
}

func TestSameRepo(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"nginx", "docker.io/library/nginx", true},
		{"nginx", "index.docker.io/library/nginx", true},
		{"team/app", "registry.example.com/team/app", true},
		{"registry.example.com/team/app", "team/app", true},
		{"registry.example.com/team/app", "other.example.com/team/app", false},
		{"team/app", "team/app2", false},
		{"app", "registry.example.com/team/app", false},
		{"team/app:1", "team/app", false},
	} {
		require.Equal(t, tc.want, SameRepo(tc.a, tc.b), "%s vs %s", tc.a, tc.b)
	}
}

func TestParseUpdate(t *testing.T) {
	for _, tc := range []struct {
		entry string
		pin   Pin
		want  Update
		err   string
	}{
		{entry: "app=1.4.2", want: Update{Name: "app", Tag: "1.4.2"}},
		{entry: "app=@" + dig, want: Update{Name: "app", Digest: dig}},
		{entry: "app=1.4.2@" + dig, want: Update{Name: "app", Tag: "1.4.2", Digest: dig}},
		{entry: "app=registry.example.com/team/app:1.4.2", want: Update{Name: "app", NewRepo: "registry.example.com/team/app", Tag: "1.4.2"}},
		{entry: "app=team/app@" + dig, want: Update{Name: "app", NewRepo: "team/app", Digest: dig}},
		{entry: "registry.example.com/team/app=registry.example.com/team/app:1.4.2@" + dig, want: Update{Name: "registry.example.com/team/app", NewRepo: "registry.example.com/team/app", Tag: "1.4.2", Digest: dig}},
		{entry: "app=1.4.2@" + dig, pin: PinTag, want: Update{Name: "app", Tag: "1.4.2"}},
		{entry: "app=1.4.2@" + dig, pin: PinDigest, want: Update{Name: "app", Digest: dig}},
		{entry: "app=1.4.2", pin: PinDigest, err: `images entry "app=1.4.2": pin is digest but the new reference has no digest`},
		{entry: "app=@" + dig, pin: PinTagAndDigest, err: "lacks a tag or a digest"},
		{entry: "app", err: `images entry "app": want name=newref`},
		{entry: "=1.0", err: "want name=newref"},
		{entry: "app=", err: "want name=newref"},
		{entry: "app:1=2", err: `images entry "app:1=2": name "app:1" must be a repository`},
		{entry: "app=team/app", err: "has neither tag nor digest"},
		{entry: "app=@sha256:xyz", err: `digest "sha256:xyz"`},
		{entry: "app=bad tag", err: `tag "bad tag"`},
		{entry: "App=1", err: `images entry "App=1": name`},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			pin := tc.pin
			if pin == "" {
				pin = PinAuto
			}
			got, err := ParseUpdate(tc.entry, pin)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.want.Entry, tc.want.Pin = tc.entry, pin
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParsePinAndValuePath(t *testing.T) {
	p, err := ParsePin("")
	require.NoError(t, err)
	require.Equal(t, PinAuto, p)
	_, err = ParsePin("sha")
	require.ErrorContains(t, err, `pin "sha"`)

	vp, err := ParseValuePath("app=global.image.tag")
	require.NoError(t, err)
	require.Equal(t, ValuePath{Entry: "app=global.image.tag", Image: "app", Path: []string{"global", "image", "tag"}, Part: "tag"}, vp)
	vp, err = ParseValuePath("image.repository")
	require.NoError(t, err)
	require.Equal(t, "name", vp.Part)
	vp, err = ParseValuePath("sidecar.img:ref")
	require.NoError(t, err)
	require.Equal(t, "ref", vp.Part)
	_, err = ParseValuePath("a..b")
	require.ErrorContains(t, err, "empty key")
	_, err = ParseValuePath("a.b:version")
	require.ErrorContains(t, err, `part "version"`)
}
