package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	kanikoPipeline = "examples/gitlab/kaniko.gitlab-ci.yml"
	// kanikoRobotCanary is the robot account's password: never printed.
	kanikoRobotCanary = "e2e-canary-harbor-robot-5c1f9e"
	kanikoRobotUser   = "robot_shop"
)

// withoutCredentials is a second job of the pipeline: the same executor
// call with no /kaniko/.docker/config.json (a fresh job container). It
// must fail: the registry requires credentials, so the first job's push
// proves they were read from the file.
const withoutCredentials = `
without-credentials:
  stage: build
  image:
    name: ghcr.io/hoist-ci/hoist:0.2.0
    entrypoint: [""]
  allow_failure: true
  script:
    - /kaniko/executor --context "${CI_PROJECT_DIR}" --dockerfile "${CI_PROJECT_DIR}/Dockerfile" --destination "${HARBOR_HOST}/shop/web:denied" --build-arg "BASE=${BASE_IMAGE}"
`

// privateCA are jobs of the pipeline against the same registry behind TLS
// with a private CA (REGISTRY_CA): trusted as GitLab's documentation has a
// kaniko job trust one, by appending it to
// /kaniko/ssl/certs/additional-ca-cert-bundle.crt — and, without that line,
// refused.
const privateCA = `
private-ca:
  stage: build
  image:
    name: ghcr.io/hoist-ci/hoist:0.2.0
    entrypoint: [""]
  script:
    - echo "${REGISTRY_CA}" >> /kaniko/ssl/certs/additional-ca-cert-bundle.crt
    - echo "{\"auths\":{\"${TLS_HOST}\":{\"auth\":\"$(printf "%s:%s" "${HARBOR_USERNAME}" "${HARBOR_PASSWORD}" | base64 | tr -d '\n')\"}}}" > /kaniko/.docker/config.json
    - /kaniko/executor --context "${CI_PROJECT_DIR}" --dockerfile "${CI_PROJECT_DIR}/Dockerfile" --destination "${TLS_HOST}/shop/web:tls" --build-arg "BASE=${TLS_HOST}/library/busybox:1.36"

private-ca-untrusted:
  stage: build
  image:
    name: ghcr.io/hoist-ci/hoist:0.2.0
    entrypoint: [""]
  allow_failure: true
  script:
    - echo "{\"auths\":{\"${TLS_HOST}\":{\"auth\":\"$(printf "%s:%s" "${HARBOR_USERNAME}" "${HARBOR_PASSWORD}" | base64 | tr -d '\n')\"}}}" > /kaniko/.docker/config.json
    - /kaniko/executor --context "${CI_PROJECT_DIR}" --dockerfile "${CI_PROJECT_DIR}/Dockerfile" --destination "${TLS_HOST}/shop/web:untrusted" --build-arg "BASE=${TLS_HOST}/library/busybox:1.36"
`

// tlsFront serves the registry over HTTPS with httptest's certificate (a
// CA of its own, valid for 127.0.0.1) and returns its host and the CA in
// PEM. The registry builds its upload URLs from X-Forwarded-Proto/Host.
func tlsFront(t *testing.T, registryHost string) (string, string) {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: registryHost}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.SetXForwarded()
		r.Out.Host = r.In.Host
	}}
	srv := httptest.NewTLSServer(proxy)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return strings.TrimPrefix(srv.URL, "https://"), string(ca)
}

// TestKanikoDropIn runs a typical GitLab kaniko job (examples/gitlab/
// kaniko.gitlab-ci.yml) under gitlab-ci-local with hoist's image as the
// only change, against a registry that requires credentials (htpasswd),
// the base image on the same registry: the image lands there, built from
// examples/app with its RUN, the executor's files are written, and the
// robot's password is never printed. hoist's image is loaded under a tag
// of this test's own, so that the runs of other worktrees sharing the
// engine keep theirs.
func TestKanikoDropIn(t *testing.T) {
	if testing.Short() {
		t.Skip("the kaniko drop-in runs a pipeline in the rig's Docker engine with gitlab-ci-local (make test); skipped in -short mode")
	}
	tag := fmt.Sprintf("hoist-e2e/kaniko:%d", time.Now().UnixNano())
	r := newRigWith(t, tag)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
		defer cancel()
		if out, err := r.run(ctx, r.root, "docker", "rmi", tag); err != nil {
			t.Logf("docker rmi %s: %v\n%s", tag, err, out)
		}
	})

	pipeline, err := os.ReadFile(filepath.Join(r.root, kanikoPipeline))
	require.NoError(t, err)
	yml := string(pipeline) + withoutCredentials + privateCA
	require.Equal(t, 4, strings.Count(yml, "name: "+spec.Image()+"\n"), "the pipeline names hoist's image as %s", spec.Image())
	yml = strings.ReplaceAll(yml, "name: "+spec.Image()+"\n", "name: "+tag+"\n")

	ws := t.TempDir()
	r.copyFiles(t, ws, map[string]string{
		"examples/app/Dockerfile":        "Dockerfile",
		"examples/app/.dockerignore":     ".dockerignore",
		"examples/app/static/index.html": "static/index.html",
	})
	require.NoError(t, os.WriteFile(filepath.Join(ws, ".gitlab-ci.yml"), []byte(yml), 0o644))
	sha := r.gitRepo(t, ws, gitlabRemote)

	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{kanikoRobotUser: kanikoRobotCanary}})
	auth := remote.WithAuth(&authn.Basic{Username: kanikoRobotUser, Password: kanikoRobotCanary})
	base := reg.Host + "/library/busybox:1.36"
	baseImg, err := testrig.BusyboxImage()
	require.NoError(t, err)
	testrig.PushImage(t, baseImg, base, auth)
	baseLayers, err := baseImg.Layers()
	require.NoError(t, err)
	baseLayer, err := baseLayers[0].Digest()
	require.NoError(t, err)

	tlsHost, ca := tlsFront(t, reg.Host)

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	args := []string{
		"--variable", "TLS_HOST=" + tlsHost,
		"--variable", "REGISTRY_CA=" + ca,
		"--variable", "HARBOR_HOST=" + reg.Host,
		"--variable", "HARBOR_USERNAME=" + kanikoRobotUser,
		"--variable", "HARBOR_PASSWORD=" + kanikoRobotCanary,
		"--variable", "BASE_IMAGE=" + base,
		// The rig's registry serves plain HTTP (a real one, HTTPS, needs
		// nothing): allowed by the environment, the job's script unchanged.
		"--variable", "INPUT_INSECURE_REGISTRIES=" + reg.Host,
	}
	start := time.Now()
	out, err := r.gitlabCILocal(ctx, t, ws, args...)
	t.Logf("gitlab-ci-local ran the kaniko job in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "gitlab-ci-local "+strings.Join(redactKanikoRobot(args), " "), out, err)

	ref := reg.Host + "/shop/web:" + sha[:gitlabShortSHA]
	r2, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	_, err = remote.Image(r2, remote.WithContext(t.Context()))
	require.Error(t, err, "the registry served %s without credentials: the test proves nothing", ref)
	img, err := remote.Image(r2, remote.WithContext(t.Context()), auth)
	require.NoError(t, err, "%s was not pushed:\n%s", ref, tail(out, logTailLines))
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 3, "the base, the COPY and the RUN")
	first, err := layers[0].Digest()
	require.NoError(t, err)
	require.Equal(t, baseLayer, first, "the image is built on the base, pulled with the file's credentials")
	info, ok := layerFiles(t, layers[2])[buildInfo]
	require.True(t, ok, "the RUN wrote no %s", buildInfo)
	require.Contains(t, string(info.data), "hoist example app\n")
	digest, err := img.Digest()
	require.NoError(t, err)

	// kaniko's --image-name-tag-with-digest-file, as an artifact.
	refFile, err := os.ReadFile(filepath.Join(ws, "image-ref.txt"))
	require.NoError(t, err, "the job's artifact image-ref.txt is missing")
	require.Equal(t, ref+"@"+digest.String()+"\n", string(refFile))
	// The cache repository got the layers.
	cache, err := name.NewRepository(reg.Host+"/shop/web/cache", name.Insecure)
	require.NoError(t, err)
	cached, err := remote.List(cache, remote.WithContext(t.Context()), auth)
	require.NoError(t, err)
	require.NotEmpty(t, cached)

	require.Contains(t, out, "executor: note: --snapshot-mode: accepted for kaniko compatibility, no effect")
	requireRunLog(t, out)
	// Without the file, the same call is refused by the registry.
	require.Regexp(t, `without-credentials.*(401|UNAUTHORIZED|unauthorized|authentication required)`, out)
	denied, err := name.ParseReference(reg.Host+"/shop/web:denied", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Head(denied, remote.WithContext(t.Context()), auth)
	require.Error(t, err, "the job without credentials pushed")

	// Behind TLS with a private CA: trusted once appended to
	// /kaniko/ssl/certs, refused (an x509 error) without.
	tlsRef, err := name.ParseReference(tlsHost+"/shop/web:tls", name.Insecure)
	require.NoError(t, err)
	tlsImg, err := remote.Image(tlsRef, remote.WithContext(t.Context()), auth, remote.WithTransport(tlsTransport(t, ca)))
	require.NoError(t, err, "the private-ca job pushed nothing:\n%s", tail(out, logTailLines))
	tlsLayers, err := tlsImg.Layers()
	require.NoError(t, err)
	require.Len(t, tlsLayers, 3)
	tlsFirst, err := tlsLayers[0].Digest()
	require.NoError(t, err)
	require.Equal(t, baseLayer, tlsFirst, "the private-ca job's image is not built on the base it pulled over TLS")
	require.Regexp(t, `private-ca-untrusted.*(x509|certificate)`, out)
	untrusted, err := name.ParseReference(tlsHost+"/shop/web:untrusted", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Head(untrusted, remote.WithContext(t.Context()), auth, remote.WithTransport(tlsTransport(t, ca)))
	require.Error(t, err, "the job without the CA pushed")

	require.NotContains(t, out, kanikoRobotCanary, "the robot's password was printed")
	requireNoCanaryIn(t, filepath.Join(ws, ".gitlab-ci-local"), kanikoRobotCanary)
}

// tlsTransport trusts the PEM CA.
func tlsTransport(t *testing.T, ca string) http.RoundTripper {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM([]byte(ca)))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return tr
}

func redactKanikoRobot(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, kanikoRobotCanary, "***")
	}
	return out
}
