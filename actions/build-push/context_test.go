package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
	"github.com/hoist-ci/hoist/internal/testrig/azureagent"
)

// repoTarball is a repository as a pipeline packs it: the app under
// examples/app, its Dockerfile COPYing a file of the app's directory.
func repoTarball(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range map[string]string{
		"README.md":                    "the repository\n",
		"examples/app/Dockerfile":      "FROM scratch\nCOPY site/ /srv/www/\n",
		"examples/app/Dockerfile.2":    "FROM scratch\nCOPY site/index.html /index.html\n",
		"examples/app/site/index.html": "<h1>from a remote context</h1>\n",
	} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// imageFiles lists the files of the image written to a tarball.
func imageFiles(t *testing.T, path string) map[string]string {
	t.Helper()
	img, err := tarball.ImageFromPath(path, nil)
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	files := map[string]string{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		require.NoError(t, err)
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(tr)
			files[strings.TrimPrefix(h.Name, "/")] = b.String()
		}
		rc.Close()
	}
	return files
}

// TestRemoteContexts builds from a tarball context — a local file and an
// S3 object — with kaniko's flags: the Dockerfile and context-sub-path are
// taken inside the unpacked context.
func TestRemoteContexts(t *testing.T) {
	data := repoTarball(t)
	local := filepath.Join(t.TempDir(), "repo.tar.gz")
	require.NoError(t, os.WriteFile(local, data, 0o644))

	s3 := testrig.S3(t, testrig.S3Options{AccessKey: "AKIA0000", Secret: canary, Region: "eu-west-1"})
	s3.Put(t, "contexts", "main_42.tar.gz", data)
	s3env := map[string]string{"S3_ENDPOINT": s3.URL, "S3_FORCE_PATH_STYLE": "true", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "AKIA0000", "AWS_SECRET_ACCESS_KEY": canary}

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"tar:// with context-sub-path", []string{"--context", "tar://" + local, "--context-sub-path", "examples/app"}, nil, "srv/www/index.html"},
		{"tar:// with a Dockerfile relative to the context's sub-path", []string{"--context", "tar://" + local, "--dockerfile", "Dockerfile.2", "--context-sub-path", "examples/app"}, nil, "index.html"},
		{"s3:// with kaniko's variables", []string{"--context=s3://contexts/main_42.tar.gz", "--context-sub-path=examples/app"}, s3env, "srv/www/index.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "image.tar")
			args := append(append([]string{}, tt.args...), "--no-push", "--tar-path", out, "--destination", "registry.example.com/app:1")
			code, stdout, stderr := invoke(t, t.TempDir(), args, tt.env)
			require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			require.Equal(t, "<h1>from a remote context</h1>\n", imageFiles(t, out)[tt.want])
			require.Contains(t, stderr, "build context unpacked")
			require.NotContains(t, stdout+stderr, canary)
		})
	}
}

func TestRemoteContextErrors(t *testing.T) {
	local := filepath.Join(t.TempDir(), "repo.tar.gz")
	require.NoError(t, os.WriteFile(local, repoTarball(t), 0o644))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown scheme", []string{"--context", "ftp://host/c.tar.gz"}, 1, "unknown prefix ftp://"},
		{"size not a size", []string{"--context", "tar://" + local, "--context-max-size", "lots"}, 1, "\"lots\" is not a size"},
		{"too large", []string{"--context", "tar://" + local, "--context-max-size", "100"}, 1, "raise context-max-size"},
		{"no such sub-path", []string{"--context", "tar://" + local, "--context-sub-path", "nope"}, 1, "context-sub-path \"nope\" is not a directory of the context"},
		{"no Dockerfile at the root", []string{"--context", "tar://" + local}, 1, "reading the Dockerfile"},
		{"missing tarball", []string{"--context", "tar:///nonexistent.tar.gz"}, 1, "opening the tarball"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, tt.args...), "--no-push", "--destination", "registry.example.com/app:1")
			code, stdout, stderr := invoke(t, t.TempDir(), args, nil)
			require.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			require.Contains(t, stderr, tt.want)
		})
	}
}

// TestRemoteContextCredentialsNeverLeak: a SAS in the context URL and an
// account key in the environment are registered as secrets on Azure
// Pipelines and written nowhere else, even when the fetch fails.
func TestRemoteContextCredentialsNeverLeak(t *testing.T) {
	const sasSig = "CANARYsas0123456789abcdef%2B%3D"
	env := map[string]string{
		"TF_BUILD": "True", "HOIST_DEBUG": "true",
		"AZURE_STORAGE_CONNECTION_STRING": "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;AccountName=devstoreaccount1;",
		"AZURE_STORAGE_ACCESS_KEY":        "Q0FOQVJZLWtleQ==",
		"INPUT_CONTEXT":                   "http://127.0.0.1:1/devstoreaccount1/c/ctx.tar.gz?sv=2019-02-02&sig=" + sasSig,
		"INPUT_NO_PUSH":                   "true", "INPUT_TAGS": "registry.example.com/app:1",
	}
	code, stdout, stderr := invoke(t, t.TempDir(), nil, env)
	require.Equal(t, 1, code)
	require.Empty(t, stderr)
	o := azureagent.Process(stdout, nil)
	require.Contains(t, o.Secrets, "CANARYsas0123456789abcdef+=")
	require.Contains(t, o.Secrets, "Q0FOQVJZLWtleQ==")
	require.Empty(t, o.CommandBeforeSecret)
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "##vso[task.setsecret]") {
			continue
		}
		require.NotContains(t, line, "CANARYsas")
		require.NotContains(t, line, "Q0FOQVJZLWtleQ==")
	}
	require.NotEmpty(t, o.Issues)
	require.Contains(t, o.Issues[len(o.Issues)-1].Message, "fetching the context")
}
