package e2e

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	deliverPipeline = "examples/gitlab/deliver/.gitlab-ci.yml"
	// deliverRepo is the two-image repository the deliver examples build.
	deliverRepo = "examples/deliver"
	// harborUser and harborCanary are the robot account of the
	// authenticated registry: the password is never printed.
	harborUser   = "robot$acme+ci"
	harborCanary = "e2e-harbor-robot-secret-6c1f0b"
)

// deliverImages are the images of examples/deliver.
var deliverImages = []string{"api", "web"}

// deliverRig is one run of the deliver scenario: the repository, its
// registry (authenticated, the base image on it too), the GitOps
// repository and the variables every pipeline gets.
type deliverRig struct {
	ws     string
	reg    *testrig.Reg
	prefix string
	auth   remote.Option
	gitops *gitops
	vars   []string
	blobs  *azblob.Client
}

func newDeliverRig(t *testing.T, r *rig, pipeline, pipelineAs string) *deliverRig {
	t.Helper()
	d := &deliverRig{ws: t.TempDir()}
	files := map[string]string{pipeline: pipelineAs}
	root := filepath.Join(r.root, deliverRepo)
	require.NoError(t, filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(filepath.ToSlash(rel), "gitops") && !strings.HasPrefix(filepath.ToSlash(rel), "app-deploy") {
			files[filepath.ToSlash(filepath.Join(deliverRepo, rel))] = rel
		}
		return nil
	}))
	r.withTemplates(t, files)
	r.copyFiles(t, d.ws, files)

	var base string
	d.reg, base, d.auth = authRegistry(t, harborUser, harborCanary)
	d.prefix = d.reg.Host + "/acme"
	// The deployment configuration names the images in this registry.
	deploys, err := filepath.Glob(filepath.Join(d.ws, "deploy", "*.yaml"))
	require.NoError(t, err)
	for _, f := range deploys {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f, []byte(strings.ReplaceAll(string(data), gitopsHost, d.reg.Host)), 0o644))
	}
	// The Azure Blob container a Flux Bucket source reads.
	az := testrig.Azurite(t)
	d.blobs = fluxContainer(t, az)
	// The GitOps repository: examples/deliver/gitops, its host the registry's.
	d.gitops = serveGitOps(t, seedFiles(t, filepath.Join(root, "gitops"), d.reg.Host))

	// Harbor hands a robot account out as a Docker config JSON; teams keep
	// it base64-encoded in a masked variable.
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{d.reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(harborUser + ":" + harborCanary)),
	}}})
	require.NoError(t, err)
	d.vars = []string{
		"--variable", "HARBOR=" + d.reg.Host,
		"--variable", "HARBOR_ROBOT_CREDS_JSON=" + base64.StdEncoding.EncodeToString(cfg),
		"--variable", "BASE_IMAGE=" + base,
		"--variable", "INSECURE_REGISTRIES=" + d.reg.Host,
		"--variable", "GITOPS_REPOSITORY=" + d.gitops.url,
		"--variable", "HOIST_BUMP_TOKEN=" + gitopsTokenCanary,
		"--variable", "AZURE_STORAGE_CONNECTION_STRING=" + az.ConnectionString(),
	}
	return d
}

// digest resolves repo:tag in the authenticated registry; "" when missing.
func (d *deliverRig) digest(t *testing.T, image, tag string) string {
	t.Helper()
	ref, err := name.ParseReference(d.prefix+"/"+image+":"+tag, name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(ref, remote.WithContext(t.Context()), d.auth)
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

// requireGitOps checks the GitOps repository's main: commits on top of the
// seed (a straight line, nothing forced), and each app's manifest
// byte-exactly as seeded but for its image reference.
func (d *deliverRig) requireGitOps(t *testing.T, commits int, refs map[string]string) {
	t.Helper()
	g := d.gitops
	require.Equal(t, commits+1, len(strings.Split(g.git(t, "rev-list", "main"), "\n")), "commits on the GitOps main")
	require.Empty(t, g.git(t, "rev-list", "--min-parents=2", "main"), "a merge commit on the GitOps main")
	require.Equal(t, "refs/heads/main", g.git(t, "for-each-ref", "--format=%(refname)", "refs/heads/"))
	for _, img := range deliverImages {
		f := "apps/" + img + ".yaml"
		old := d.reg.Host + "/acme/" + img + ":0.9.0"
		want := strings.Replace(g.files[f], old, refs[img], 1)
		require.Equal(t, want, g.gitRaw(t, "cat-file", "blob", "main:"+f), "%s at the GitOps main", f)
	}
}

func (d *deliverRig) commit(t *testing.T, r *rig, file, content string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(d.ws, file), []byte(content), 0o644))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "change " + file}} {
		out, err := r.run(ctx, d.ws, "git", args...)
		require.NoError(t, err, out)
	}
	out, err := r.run(ctx, d.ws, "git", "rev-parse", "HEAD")
	require.NoError(t, err, out)
	return strings.TrimSpace(out)
}

func (d *deliverRig) git(t *testing.T, r *rig, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := r.run(ctx, d.ws, "git", args...)
	require.NoError(t, err, out)
}

// requirePublished checks the deployment configuration published as a Flux
// OCI artifact at <prefix>/manifests:<tag> and in the Azure container: each
// app's manifest names the image reference just built or released.
func (d *deliverRig) requirePublished(t *testing.T, tag string, refs map[string]string) {
	t.Helper()
	files := artifactFiles(t, d.prefix+"/manifests:"+tag, d.auth)
	for _, img := range deliverImages {
		require.Contains(t, files[img+".yaml"], "image: "+refs[img], "%s.yaml in the artifact %s", img, tag)
		blob, err := d.blobs.DownloadStream(t.Context(), "flux", "app/"+img+".yaml", nil)
		require.NoError(t, err, "app/%s.yaml is not in the container", img)
		b, err := io.ReadAll(blob.Body)
		blob.Body.Close()
		require.NoError(t, err)
		require.Equal(t, files[img+".yaml"], string(b), "app/%s.yaml in the container", img)
	}
}

// clean removes what gitlab-ci-local copied back into the workspace after a
// pipeline (artifacts, reports): GitLab starts every pipeline from a fresh
// clone, and a job sees only the artifacts of the jobs it needs.
func (d *deliverRig) clean(t *testing.T) {
	t.Helper()
	for _, p := range []string{".hoist", "gate-reports", "gate.env", "build-push.env", "retag.env", "bump.env", "publish.env", filepath.Join(".gitlab-ci-local", "artifacts")} {
		require.NoError(t, os.RemoveAll(filepath.Join(d.ws, p)))
	}
}

// dotenv lists the lines of every dotenv report the jobs left.
func (d *deliverRig) dotenv(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(d.ws, ".gitlab-ci-local", "artifacts", "*", ".gitlab-ci-reports", "dotenv", "*.env"))
	require.NoError(t, err)
	var lines []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		lines = append(lines, strings.Split(string(data), "\n")...)
	}
	return lines
}

// requireNoSecrets fails when a canary is in the output or anything
// gitlab-ci-local kept of the jobs.
func (d *deliverRig) requireNoSecrets(t *testing.T, out string) {
	t.Helper()
	for _, canary := range []string{harborCanary, gitopsTokenCanary, testrig.AzuriteKey} {
		require.NotContains(t, out, canary, "a secret was printed")
		requireNoCanaryIn(t, filepath.Join(d.ws, ".gitlab-ci-local"), canary)
	}
}

// testDeliverUnderGitLabCILocal runs examples/gitlab/deliver/.gitlab-ci.yml
// (templates/deliver.yml with two images, a Harbor robot account given as
// base64 HARBOR_ROBOT_CREDS_JSON, the base image on the same authenticated
// registry, a GitOps repository over smart HTTP with a token) through a
// repository's life: a push to main, the release tag v1.4.2, a merge
// request, a documentation-only push.
func testDeliverUnderGitLabCILocal(t *testing.T, r *rig) {
	d := newDeliverRig(t, r, deliverPipeline, ".gitlab-ci.yml")
	require.NoError(t, os.WriteFile(filepath.Join(d.ws, ".gitignore"), []byte(".gitlab-ci-local/\n.hoist/\ngate-reports/\n*.env\n"), 0o644))
	sha := r.gitRepo(t, d.ws, gitlabRemote)
	short := sha[:gitlabShortSHA]
	run := func(t *testing.T, what string, extra ...string) string {
		t.Helper()
		d.clean(t)
		ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
		defer cancel()
		start := time.Now()
		out, err := r.gitlabCILocal(ctx, t, d.ws, append(append([]string{}, d.vars...), extra...)...)
		t.Logf("gitlab-ci-local ran the %s pipeline in %s", what, time.Since(start).Round(time.Millisecond))
		requireRun(t, "gitlab-ci-local ("+what+")", out, err)
		d.requireNoSecrets(t, out)
		return out
	}

	// 1. A push to main: gate, both images built (short SHA, latest), one
	// GitOps commit pinning both to <sha>@<digest>.
	out := run(t, "main")
	built := map[string]string{}
	refs := map[string]string{}
	for _, img := range deliverImages {
		built[img] = d.digest(t, img, short)
		require.NotEmpty(t, built[img], "%s:%s was not pushed", img, short)
		require.Equal(t, built[img], d.digest(t, img, "latest"), "%s:latest", img)
		refs[img] = d.prefix + "/" + img + ":" + short + "@" + built[img]
		require.Contains(t, d.dotenv(t), strings.ToUpper(img)+"_DIGEST="+built[img], "the %s outputs are not prefixed with its name", img)
	}
	require.NotEqual(t, built["api"], built["web"])
	d.requireGitOps(t, 1, refs)
	d.requirePublished(t, short, refs)
	require.Contains(t, out, "deliver-gate")

	// 2. The release tag: retagged, not rebuilt; GitOps pinned to 1.4.2.
	out = run(t, "tag v1.4.2",
		"--variable", "CI_COMMIT_TAG="+releaseTag,
		"--variable", "CI_COMMIT_REF_NAME="+releaseTag,
		"--variable", "CI_COMMIT_REF_SLUG="+strings.ReplaceAll(releaseTag, ".", "-"),
		"--unset-variable", "CI_COMMIT_BRANCH",
		"--ignore-predefined-vars", "CI_COMMIT_TAG,CI_COMMIT_REF_NAME,CI_COMMIT_REF_SLUG,CI_COMMIT_BRANCH",
	)
	require.NotContains(t, out, "build-push", "a tag pipeline built")
	for _, img := range deliverImages {
		for _, tag := range []string{"v1.4.2", "1.4.2", "1.4", "1", "latest"} {
			require.Equal(t, built[img], d.digest(t, img, tag), "%s:%s", img, tag)
		}
		refs[img] = d.prefix + "/" + img + ":1.4.2@" + built[img]
	}
	d.requireGitOps(t, 2, refs)
	d.requirePublished(t, "1.4.2", refs)

	// 3. A merge request from a branch changing the api: built as mr-7,
	// never deployed.
	d.git(t, r, "checkout", "-q", "-b", "feature")
	d.commit(t, r, "services/api/main.sh", "#!/bin/sh\necho api v2\n")
	out = run(t, "merge request",
		"--variable", "CI_PIPELINE_SOURCE=merge_request_event",
		"--variable", "CI_MERGE_REQUEST_IID=7",
		"--variable", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main",
		"--variable", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=feature",
		"--variable", "CI_MERGE_REQUEST_DIFF_BASE_SHA="+sha,
		"--unset-variable", "CI_COMMIT_BRANCH",
		"--ignore-predefined-vars", "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH",
	)
	for _, img := range deliverImages {
		require.NotEmpty(t, d.digest(t, img, "mr-7"), "%s:mr-7 was not pushed", img)
		require.Equal(t, built[img], d.digest(t, img, "latest"), "a merge request moved %s:latest", img)
	}
	require.NotContains(t, out, "deliver-bump", "a merge request deployed")
	require.NotContains(t, out, "deliver-publish", "a merge request published")
	d.requireGitOps(t, 2, refs)

	// 4. A documentation-only push to main: nothing built, nothing deployed.
	d.git(t, r, "checkout", "-q", "main")
	docs := d.commit(t, r, "docs/guide.md", "# Guide\n\nHow to use the app, better.\n")
	out = run(t, "docs-only",
		"--variable", "CI_COMMIT_BEFORE_SHA="+sha,
		"--ignore-predefined-vars", "CI_COMMIT_BEFORE_SHA",
	)
	require.Contains(t, out, "skipped")
	for _, img := range deliverImages {
		require.Empty(t, d.digest(t, img, docs[:gitlabShortSHA]), "a docs-only change built %s", img)
		require.Equal(t, built[img], d.digest(t, img, "latest"))
	}
	d.requireGitOps(t, 2, refs)
}

const (
	deliverCaller = "examples/github/deliver-caller.yml"
	pushMainEvent = "examples/github/events/push-main.json"
	// acrUser and acrCanary are the registry's user and password in the
	// GitHub run: the password is never printed.
	acrUser   = "acr-pusher"
	acrCanary = "e2e-acr-password-9e2d47"
)

// testDeliverUnderAct runs examples/github/deliver-caller.yml, a caller of
// the reusable workflow .github/workflows/deliver.yml (hoist-ci/hoist@v0 is
// this checkout), on a push to main: app/ is built and pushed to an
// authenticated registry (its base image there too) as the short SHA and
// latest, and the Helm values of the GitOps repository are pinned to it.
func testDeliverUnderAct(t *testing.T, r *rig) {
	ws := t.TempDir()
	r.copyFiles(t, ws, map[string]string{
		deliverCaller:                   ".github/workflows/deliver.yml",
		pushMainEvent:                   "event.json",
		deliverRepo + "/web/Dockerfile": "app/Dockerfile",
		deliverRepo + "/web/index.html": "app/index.html",
		deliverRepo + "/docs/guide.md":  "docs/guide.md",
	})
	reg, base, auth := authRegistry(t, acrUser, acrCanary)
	deploy, err := os.ReadFile(filepath.Join(r.root, deliverRepo, "app-deploy", "app.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "deploy"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "deploy", "app.yaml"), []byte(strings.ReplaceAll(string(deploy), gitopsHost, reg.Host)), 0o644))
	sha := r.gitRepo(t, ws, "https://github.com/acme/app.git")
	az := testrig.Azurite(t)
	blobs := fluxContainer(t, az)
	g := serveGitOps(t, seedFiles(t, filepath.Join(r.root, deliverRepo, "gitops-helm"), reg.Host))
	seed := g.files

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	args := []string{
		"-e", "event.json",
		"--local-repository", "hoist-ci/hoist@v0=" + r.root,
		"--var", "REGISTRY=" + reg.Host,
		"--var", "ACR_USERNAME=" + acrUser,
		"--var", "GITOPS_REPOSITORY=" + g.url,
		"--var", "INSECURE_REGISTRIES=" + reg.Host,
		"--var", "BUILD_ARGS=BASE=" + base,
		"--secret", "ACR_PASSWORD=" + acrCanary,
		"--secret", "GITOPS_TOKEN=" + gitopsTokenCanary,
		"--secret", "GITHUB_TOKEN=" + tokenCanary,
		"--secret", "AZURE_STORAGE_CONNECTION_STRING=" + az.ConnectionString(),
	}
	start := time.Now()
	out, err := r.act(ctx, t, ws, ".github/workflows/deliver.yml", args...)
	t.Logf("act ran the deliver caller in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "act (deliver caller)", out, err)
	for _, canary := range []string{acrCanary, gitopsTokenCanary, tokenCanary, testrig.AzuriteKey} {
		require.NotContains(t, out, canary, "a secret was printed")
	}

	short := sha[:githubShortSHA]
	ref, err := name.ParseReference(reg.Host+"/team/app:"+short, name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(ref, remote.WithContext(t.Context()), auth)
	require.NoError(t, err, "%s was not pushed", ref)
	digest := desc.Digest.String()
	latest, err := name.ParseReference(reg.Host+"/team/app:latest", name.Insecure)
	require.NoError(t, err)
	desc, err = remote.Head(latest, remote.WithContext(t.Context()), auth)
	require.NoError(t, err)
	require.Equal(t, digest, desc.Digest.String(), "latest")

	want := strings.Replace(seed["apps/app/values.yaml"], `tag: "0.9.0"`, `tag: "`+short+`"`, 1)
	want = strings.Replace(want, `digest: ""`, `digest: "`+digest+`"`, 1)
	require.Equal(t, want, g.gitRaw(t, "cat-file", "blob", "main:apps/app/values.yaml"))
	require.Equal(t, "2", g.git(t, "rev-list", "--count", "main"))

	// deploy/ with the image just built, as a Flux artifact and in the container.
	files := artifactFiles(t, reg.Host+"/team/manifests:"+short, auth)
	require.Contains(t, files["app.yaml"], "image: "+reg.Host+"/team/app:"+short+"@"+digest)
	blob, err := blobs.DownloadStream(t.Context(), "flux", "app/app.yaml", nil)
	require.NoError(t, err, "app/app.yaml is not in the container")
	b, err := io.ReadAll(blob.Body)
	blob.Body.Close()
	require.NoError(t, err)
	require.Equal(t, files["app.yaml"], string(b))
}

// artifactFiles reads the files of the Flux OCI artifact at ref.
func artifactFiles(t *testing.T, ref string, opts ...remote.Option) map[string]string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r, append(opts, remote.WithContext(t.Context()))...)
	require.NoError(t, err, "the artifact %s was not pushed", ref)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1, "a Flux artifact has one layer")
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[h.Name] = string(b)
	}
}

// authRegistry starts a registry that wants user's password, with the
// busybox base on it (read with the same credentials), and returns it, the
// base's reference and the option that reads from it.
func authRegistry(t *testing.T, user, password string) (*testrig.Reg, string, remote.Option) {
	t.Helper()
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{user: password}})
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	img, err := testrig.BusyboxImage()
	require.NoError(t, err)
	base := reg.Host + "/library/busybox:1.36"
	testrig.PushImage(t, img, base, auth)
	return reg, base, auth
}

// fluxContainer makes the Azure Blob container "flux" a Flux Bucket source
// reads, in az.
func fluxContainer(t *testing.T, az *testrig.AzuriteServer) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	require.NoError(t, err)
	_, err = c.CreateContainer(t.Context(), "flux", nil)
	require.NoError(t, err)
	return c
}
