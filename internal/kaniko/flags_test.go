package kaniko

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
)

// TestPassedFlagsAreBuildPushFlags: every flag passed on is one of
// build-push's inputs or aliases, of the same kind (value or boolean).
func TestPassedFlagsAreBuildPushFlags(t *testing.T) {
	inputs := map[string]spec.Input{}
	for _, in := range spec.BuildPush().Inputs {
		inputs[in.Name] = in
		for _, a := range in.Aliases {
			inputs[a] = in
		}
	}
	for name, f := range flags() {
		if f.kind != pass {
			continue
		}
		to := f.to
		if to == "" {
			to = name
		}
		in, ok := inputs[to]
		require.True(t, ok, "--%s is passed on as --%s, which build-push does not have", name, to)
		require.Equal(t, in.Type == spec.Boolean, !f.value, "--%s: kaniko's and build-push's kinds differ", name)
	}
}

func TestTranslate(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      []string
		notes     []string // flags named by the notes, in order
		check     func(t *testing.T, tr Translation)
		wantError string
	}{
		{
			name: "GitLab's documented kaniko job",
			args: []string{"--context", "/builds/g/app", "--dockerfile", "/builds/g/app/Dockerfile", "--destination", "registry.example.com/g/app:abc1234"},
			want: []string{"--context=/builds/g/app", "--dockerfile=/builds/g/app/Dockerfile", "--destination=registry.example.com/g/app:abc1234"},
		},
		{
			name: "short flags, joined and separate",
			args: []string{"-c", "dir:///workspace", "-f=Dockerfile.prod", "-dreg.example.com/a:1", "-v", "info"},
			want: []string{"--context=dir:///workspace", "--dockerfile=Dockerfile.prod", "--destination=reg.example.com/a:1"},
		},
		{
			name: "every flag with a meaning",
			args: []string{
				"--context=.", "--context-sub-path", "svc", "--destination", "r/a:1", "--destination=r/a:latest",
				"--build-arg", "A=1", "--build-arg=B", "--label", "team=x", "--target", "run",
				"--cache=true", "--cache-repo", "r/a/cache", "--cache-ttl", "24h", "--cache-run-layers=false",
				"--no-push", "--tar-path", "/tmp/i.tar", "--tarPath=/tmp/j.tar", "--oci-layout-path", "/tmp/oci",
				"--digest-file=/tmp/d", "--image-name-with-digest-file", "/tmp/n",
				"--skip-tls-verify", "--insecure", "--insecure-pull", "--skip-tls-verify-pull",
				"--insecure-registry", "reg.local:5000", "--skip-tls-verify-registry=other.local",
				"--registry-mirror", "mirror.gcr.io", "--push-retry", "3", "--reproducible",
				"--compression", "zstd", "--custom-platform", "linux/arm64", "--customPlatform=linux/amd64",
			},
			want: []string{
				"--context=.", "--context-sub-path=svc", "--destination=r/a:1", "--destination=r/a:latest",
				"--build-arg=A=1", "--build-arg=B", "--label=team=x", "--target=run",
				"--cache=true", "--cache-repo=r/a/cache", "--cache-ttl=24h", "--cache-run-layers=false",
				"--no-push=true", "--tar-path=/tmp/i.tar", "--tar-path=/tmp/j.tar", "--oci-layout-path=/tmp/oci",
				"--digest-file=/tmp/d", "--image-name-with-digest-file=/tmp/n",
				"--skip-tls-verify=true", "--insecure=true", "--insecure-pull=true", "--skip-tls-verify-pull=true",
				"--insecure-registries=reg.local:5000", "--insecure-registries=other.local",
				"--registry-mirror=mirror.gcr.io", "--push-retry=3", "--reproducible=true",
				"--compression=zstd", "--platforms=linux/arm64", "--platforms=linux/amd64",
			},
		},
		{
			name:  "flags without effect are accepted with a note each",
			args:  []string{"--destination", "r/a:1", "--snapshot-mode", "redo", "--snapshotMode=time", "--single-snapshot", "--cleanup", "--use-new-run", "--cache-copy-layers", "--cache-dir", "/cache", "--ignore-path=/busybox", "--kaniko-dir", "/k", "--force", "--log-format", "json", "--skip-unused-stages=true", "--compressed-caching=false"},
			want:  []string{"--destination=r/a:1"},
			notes: []string{"snapshot-mode", "snapshotMode", "single-snapshot", "cleanup", "use-new-run", "cache-copy-layers", "cache-dir", "ignore-path", "kaniko-dir", "force", "log-format", "skip-unused-stages", "compressed-caching"},
		},
		{
			name: "kaniko's cache-dir is not build-push's",
			args: []string{"--cache-dir=/cache"},
			want: nil, notes: []string{"cache-dir"},
		},
		{
			name:  "files and levels handled by the executor",
			args:  []string{"--image-name-tag-with-digest-file", "/tmp/tags", "--verbosity=debug", "--registry-certificate", "reg.example.com=/certs/reg/ca.crt"},
			notes: []string{"registry-certificate"},
			check: func(t *testing.T, tr Translation) {
				require.Equal(t, "/tmp/tags", tr.ImageNameTagWithDigestFile)
				require.True(t, tr.Debug)
				require.Equal(t, []string{"/certs/reg"}, tr.CertificateDirs)
			},
		},
		{name: "help", args: []string{"--help"}, check: func(t *testing.T, tr Translation) { require.True(t, tr.Help) }},
		{name: "version subcommand", args: []string{"version"}, check: func(t *testing.T, tr Translation) { require.True(t, tr.Version) }},
		{name: "unknown flag", args: []string{"--destination", "r/a:1", "--frobnicate", "x"}, wantError: "unknown flag --frobnicate"},
		{name: "unknown flag near a known one", args: []string{"--destinations=r/a:1"}, wantError: "did you mean --destination"},
		{name: "unknown short flag", args: []string{"-x"}, wantError: "unknown flag -x"},
		{name: "stray argument", args: []string{"--no-push", "true"}, wantError: `unexpected argument "true"`},
		{name: "value missing", args: []string{"--destination"}, wantError: "flag --destination needs a value"},
		{name: "boolean with a value that is not one", args: []string{"--cache=yes"}, wantError: "flag --cache is a boolean"},
		{name: "meaning hoist lacks", args: []string{"--registry-map", "index.docker.io=mirror.local"}, wantError: "flag --registry-map is not supported"},
		{name: "bad verbosity", args: []string{"--verbosity", "loud"}, wantError: `"loud" is not a level`},
		{name: "bad registry certificate", args: []string{"--registry-certificate", "/certs/ca.crt"}, wantError: "write REGISTRY=/path/to/ca.crt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Translate(tc.args)
			if tc.wantError != "" {
				require.ErrorContains(t, err, tc.wantError)
				return
			}
			require.NoError(t, err)
			if tc.check == nil || tc.want != nil {
				require.Equal(t, tc.want, tr.Args)
			}
			require.Len(t, tr.Notes, len(tc.notes), "%q", tr.Notes)
			for i, n := range tc.notes {
				require.Contains(t, tr.Notes[i], "--"+n)
			}
			if tc.check != nil {
				tc.check(t, tr)
			}
		})
	}
}

// TestTranslateNeverEchoesAValue: an unknown flag's error names the flag,
// never its value (it may be a secret).
func TestTranslateNeverEchoesAValue(t *testing.T) {
	_, err := Translate([]string{"--registry-password=canary-s3cret"})
	require.ErrorContains(t, err, "--registry-password")
	require.NotContains(t, err.Error(), "canary-s3cret")
}

func FuzzTranslate(f *testing.F) {
	f.Add("--context=. -d r/a:1 --cache --verbosity debug")
	f.Fuzz(func(t *testing.T, line string) {
		tr, err := Translate(strings.Fields(line))
		if err != nil {
			return
		}
		for _, a := range tr.Args {
			require.Regexp(t, `^--[a-z-]+=`, a)
		}
	})
}
