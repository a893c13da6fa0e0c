package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/command/publish"
	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const canary = "CANARY-7c3a-publish-secret"

// invoke runs the publish binary's whole path — inputs, registry, bucket,
// component, outputs — in process, on the given platform environment.
func invoke(t *testing.T, dir string, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = ci.Main(context.Background(), spec.Publish(), ci.Env{
		Args:   args,
		Getenv: func(k string) string { return env[k] },
		Stdout: &out,
		Stderr: &errb,
		Dir:    dir,
	}, publish.Run)
	return code, out.String(), errb.String()
}

func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range map[string]string{
		"deploy/base/kustomization.yaml":          "resources: [deployment.yaml]\n",
		"deploy/base/deployment.yaml":             "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n",
		"deploy/overlays/prod/kustomization.yaml": "resources: [../../base]\nnamePrefix: prod-\n",
		"chart/Chart.yaml":                        "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"chart/values.yaml":                       "replicas: 1\n",
		"chart/templates/deployment.yaml":         "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n",
	} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o644))
	}
	return dir
}

// TestCLIKustomizeToRegistryAndAzurite: the command line, plus a
// bucket: the overlay is built, pushed, and synced into Azurite; a second
// run changes nothing in the bucket.
func TestCLIKustomizeToRegistryAndAzurite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the registry and Azurite")
	}
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	az := testrig.Azurite(t)
	c, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	require.NoError(t, err)
	_, err = c.CreateContainer(context.Background(), "deploy", nil)
	require.NoError(t, err)

	dir := project(t)
	args := []string{"--path", "deploy/overlays/prod", "--render", "kustomize", "--tags", reg.Host + "/team/app-manifests:1.4.2",
		"--insecure-registries", reg.Host, "--bucket", "azure://deploy/apps/prod", "--diff"}
	env := map[string]string{"AZURE_STORAGE_CONNECTION_STRING": az.ConnectionString()}
	code, stdout, stderr := invoke(t, dir, args, env)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "pushed=true\n")
	require.Contains(t, stdout, "bucket-uploaded=1\n")
	require.Contains(t, stdout, "image="+reg.Host+"/team/app-manifests@sha256:")

	code, stdout, stderr = invoke(t, dir, args, env)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "pushed=false\n")
	require.Contains(t, stdout, "bucket-uploaded=0\n")
	require.Contains(t, stderr, "diff: the remote content equals the local one: not pushed")
	require.NotContains(t, stdout+stderr, testrig.AzuriteKey)
}

// TestHelmThroughPublishHelm renders a chart with the publish-helm binary
// found on PATH, as in the image.
func TestHelmThroughPublishHelm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds publish-helm")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, "../publish-helm")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	host := testrig.InProcessRegistry(t)
	dir := project(t)
	code, stdout, stderr := invoke(t, dir, []string{"--path", "chart", "--render", "helm", "--set", "replicas=3",
		"--tags", host + "/team/app-manifests:v1", "--insecure-registries", host, "--release-name", "shop"}, nil)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "pushed=true")

	code, _, stderr = invoke(t, dir, []string{"--path", "chart", "--render", "helm", "--release-name", "Bad_Name",
		"--tags", host + "/team/app-manifests:v2", "--insecure-registries", host}, map[string]string{})
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "helm template chart")
}

// TestCanarySecretsNeverLeak: bucket credentials and the registry password
// stay out of the log, the outputs and the errors on every platform.
func TestCanarySecretsNeverLeak(t *testing.T) {
	host := testrig.InProcessRegistry(t)
	for _, platform := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"cli", map[string]string{}, []string{"--path", "deploy/base", "--tags", host + "/a/b:v1", "--insecure-registries", host,
			"--password", canary, "--username", "u", "--bucket", "azure://deploy", "--bucket-connection-string", "AccountName=x;AccountKey=" + canary}},
		{"github", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "OUT", "GITHUB_STEP_SUMMARY": "SUM",
			"INPUT_PATH": "deploy/base", "INPUT_BUCKET": "s3://deploy/p", "INPUT_BUCKET-ENDPOINT": "http://127.0.0.1:1",
			"INPUT_BUCKET-ACCESS-KEY-ID": "AKIA", "INPUT_BUCKET-SECRET-ACCESS-KEY": canary}, nil},
		{"gitlab", map[string]string{"GITLAB_CI": "true", "CI_PROJECT_DIR": "DIR",
			"INPUT_PATH": "deploy/base", "INPUT_BUCKET": "azure://deploy", "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + canary + ";BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"}, nil},
	} {
		t.Run(platform.name, func(t *testing.T) {
			dir := project(t)
			for k, v := range platform.env {
				switch v {
				case "OUT", "SUM":
					platform.env[k] = filepath.Join(dir, v)
				case "DIR":
					platform.env[k] = dir
				}
			}
			platform.env["GITHUB_WORKSPACE"] = dir
			code, stdout, stderr := invoke(t, dir, platform.args, platform.env)
			require.Equal(t, 1, code, stdout+stderr)
			all := stdout + stderr
			for _, f := range []string{"OUT", "SUM", "publish.env"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					all += string(b)
				}
			}
			all = strings.ReplaceAll(all, "::add-mask::"+canary+"\n", "")
			require.NotContains(t, all, canary)
		})
	}
}
