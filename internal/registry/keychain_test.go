package registry

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/require"
)

const testCanary = "CANARY-4c1d-never-print"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fakeHelper writes docker-credential-fake into a directory to put on PATH:
// it knows helper.example.com (user/password) and token.example.com
// (an identity token) and answers "not found" otherwise.
func fakeHelper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
read url
case "$url" in
  helper.example.com) echo '{"ServerURL":"helper.example.com","Username":"helper-user","Secret":"helper-pass"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"refresh-token"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hub-user","Secret":"hub-pass"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "docker-credential-fake"), []byte(script), 0o755))
	return dir
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600))
	return dir
}

func TestKeychainOrderAndHostMatching(t *testing.T) {
	helperDir := fakeHelper(t)
	fileDir := writeConfig(t, `{"auths":{"file.example.com":{"auth":"`+b64("file-user:file-pass")+`"},"both.example.com":{"username":"file-user","password":"file-pass"}},`+
		`"credHelpers":{"helper.example.com":"fake","token.example.com":"fake","missing.example.com":"not-installed"}}`)
	storeDir := writeConfig(t, `{"auths":{"hub.example.com":{}},"credsStore":"fake"}`)
	kanikoDir := writeConfig(t, `{"auths":{"kaniko.example.com":{"auth":"`+b64("kaniko-user:kaniko-pass")+`"}}}`)
	registryAuth := `{"auths":{"https://both.example.com/v1/":{"auth":"` + b64("ra-user:ra-pass") + `"},` +
		`"docker.io":{"auth":"` + b64("ra-hub:ra-hub-pass") + `"},` +
		`"scoped.example.com/team":{"auth":"` + b64("team-user:team-pass") + `"},` +
		`"scoped.example.com":{"auth":"` + b64("host-user:host-pass") + `"}}}`
	dockerAuth := `{"auths":{"both.example.com":{"auth":"` + b64("dac-user:dac-pass") + `"},"gitlab.example.com:5050":{"auth":"` + b64("dac-gl:dac-gl-pass") + `"}}}`

	tests := []struct {
		name       string
		opts       Options
		env        map[string]string
		repo       string
		targets    []string
		want       authn.AuthConfig
		wantSource string // substring; "" means anonymous
	}{
		{name: "nothing configured is anonymous", repo: "ghcr.io/o/app"},
		{name: "inputs for a target", opts: Options{Username: "in-user", Password: "in-pass"}, repo: "ghcr.io/o/app", targets: []string{"ghcr.io"},
			env: map[string]string{"GITHUB_TOKEN": "gh-token"}, want: authn.AuthConfig{Username: "in-user", Password: "in-pass"}, wantSource: SourceInputs},
		{name: "inputs not for other registries", opts: Options{Username: "in-user", Password: "in-pass"}, repo: "ghcr.io/o/app", targets: []string{"quay.io"},
			env: map[string]string{"GITHUB_TOKEN": "gh-token"}, want: authn.AuthConfig{Username: "x-access-token", Password: "gh-token"}, wantSource: "GITHUB_TOKEN"},
		{name: "inputs beat registry-auth", opts: Options{Username: "in-user", Password: "in-pass", RegistryAuth: registryAuth}, repo: "both.example.com/app", targets: []string{"both.example.com"},
			want: authn.AuthConfig{Username: "in-user", Password: "in-pass"}, wantSource: SourceInputs},
		{name: "registry-auth raw, https:// key", opts: Options{RegistryAuth: registryAuth}, repo: "both.example.com/app",
			env: map[string]string{"DOCKER_AUTH_CONFIG": dockerAuth, "DOCKER_CONFIG": fileDir}, want: authn.AuthConfig{Username: "ra-user", Password: "ra-pass"}, wantSource: SourceRegistryAuth},
		{name: "registry-auth base64", opts: Options{RegistryAuth: b64(registryAuth)}, repo: "both.example.com/app",
			want: authn.AuthConfig{Username: "ra-user", Password: "ra-pass"}, wantSource: SourceRegistryAuth},
		{name: "registry-auth base64 wrapped over lines", opts: Options{RegistryAuth: wrap(b64(registryAuth), 60)}, repo: "both.example.com/app",
			want: authn.AuthConfig{Username: "ra-user", Password: "ra-pass"}, wantSource: SourceRegistryAuth},
		{name: "docker.io key serves index.docker.io", opts: Options{RegistryAuth: registryAuth}, repo: "alpine",
			want: authn.AuthConfig{Username: "ra-hub", Password: "ra-hub-pass"}, wantSource: SourceRegistryAuth},
		{name: "repository-scoped key wins for its namespace", opts: Options{RegistryAuth: registryAuth}, repo: "scoped.example.com/team/app",
			want: authn.AuthConfig{Username: "team-user", Password: "team-pass"}, wantSource: SourceRegistryAuth},
		{name: "host key for other namespaces", opts: Options{RegistryAuth: registryAuth}, repo: "scoped.example.com/teammate/app",
			want: authn.AuthConfig{Username: "host-user", Password: "host-pass"}, wantSource: SourceRegistryAuth},
		{name: "DOCKER_AUTH_CONFIG beats the config file", env: map[string]string{"DOCKER_AUTH_CONFIG": dockerAuth, "DOCKER_CONFIG": fileDir}, repo: "both.example.com/app",
			want: authn.AuthConfig{Username: "dac-user", Password: "dac-pass"}, wantSource: SourceDockerAuth},
		{name: "DOCKER_AUTH_CONFIG host with port", env: map[string]string{"DOCKER_AUTH_CONFIG": dockerAuth, "CI_REGISTRY": "gitlab.example.com:5050", "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "job-token"},
			repo: "gitlab.example.com:5050/g/app", want: authn.AuthConfig{Username: "dac-gl", Password: "dac-gl-pass"}, wantSource: SourceDockerAuth},
		{name: "DOCKER_CONFIG file", env: map[string]string{"DOCKER_CONFIG": fileDir}, repo: "file.example.com/app",
			want: authn.AuthConfig{Username: "file-user", Password: "file-pass"}, wantSource: filepath.Join(fileDir, "config.json")},
		{name: "HOME/.docker when DOCKER_CONFIG is unset", env: map[string]string{"HOME": homeWith(t, fileDir)}, repo: "file.example.com/app",
			want: authn.AuthConfig{Username: "file-user", Password: "file-pass"}, wantSource: "/.docker/config.json"},
		{name: "credHelpers entry", env: map[string]string{"DOCKER_CONFIG": fileDir, "PATH": helperDir}, repo: "helper.example.com/app",
			want: authn.AuthConfig{Username: "helper-user", Password: "helper-pass"}, wantSource: "docker-credential-fake (credential helper configured in " + filepath.Join(fileDir, "config.json")},
		{name: "credential helper identity token", env: map[string]string{"DOCKER_CONFIG": fileDir, "PATH": helperDir}, repo: "token.example.com/app",
			want: authn.AuthConfig{IdentityToken: "refresh-token"}, wantSource: "docker-credential-fake"},
		{name: "credsStore for Docker Hub", env: map[string]string{"DOCKER_CONFIG": storeDir, "PATH": helperDir}, repo: "library/alpine",
			want: authn.AuthConfig{Username: "hub-user", Password: "hub-pass"}, wantSource: "docker-credential-fake"},
		{name: "helper not installed falls through", env: map[string]string{"DOCKER_CONFIG": fileDir, "PATH": helperDir, "CI_REGISTRY": "missing.example.com", "CI_REGISTRY_USER": "u", "CI_REGISTRY_PASSWORD": "job-token-1"},
			repo: "missing.example.com/app", want: authn.AuthConfig{Username: "u", Password: "job-token-1"}, wantSource: "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"},
		{name: "helper without credentials falls through", env: map[string]string{"DOCKER_CONFIG": storeDir, "PATH": helperDir}, repo: "other.example.com/app"},
		{name: "kaniko config", env: map[string]string{"DOCKER_CONFIG": fileDir}, repo: "kaniko.example.com/app",
			want: authn.AuthConfig{Username: "kaniko-user", Password: "kaniko-pass"}, wantSource: filepath.Join(kanikoDir, "config.json")},
		{name: "CI_REGISTRY with https:// prefix", env: map[string]string{"CI_REGISTRY": "https://registry.gitlab.com", "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "job-token"},
			repo: "registry.gitlab.com/g/app", want: authn.AuthConfig{Username: "gitlab-ci-token", Password: "job-token"}, wantSource: "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"},
		{name: "CI_REGISTRY only for its host", env: map[string]string{"CI_REGISTRY": "registry.gitlab.com", "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "job-token"},
			repo: "quay.io/o/app"},
		{name: "GITHUB_TOKEN with GITHUB_ACTOR", env: map[string]string{"GITHUB_TOKEN": "gh-token", "GITHUB_ACTOR": "octocat"}, repo: "ghcr.io/o/app",
			want: authn.AuthConfig{Username: "octocat", Password: "gh-token"}, wantSource: "GITHUB_TOKEN"},
		{name: "GITHUB_TOKEN only for ghcr.io", env: map[string]string{"GITHUB_TOKEN": "gh-token"}, repo: "docker.io/o/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			tt.opts.Getenv = func(k string) string { return tt.env[k] }
			tt.opts.Ambient = platformCredential(tt.env)
			tt.opts.Log = slog.New(slog.NewTextHandler(&logBuf, nil))
			c, err := newClient(tt.opts, filepath.Join(kanikoDir, "config.json"))
			require.NoError(t, err)
			repo, err := name.NewRepository(tt.repo)
			require.NoError(t, err)
			var targets []name.Registry
			for _, h := range tt.targets {
				r, err := name.NewRegistry(h)
				require.NoError(t, err)
				targets = append(targets, r)
			}
			auth, err := authn.Resolve(t.Context(), c.Keychain(targets...), repo)
			require.NoError(t, err)
			got, err := authn.Authorization(t.Context(), auth)
			require.NoError(t, err)
			require.Equal(t, tt.want, *got)
			source := c.Source(repo.RegistryStr())
			if tt.wantSource == "" {
				require.Empty(t, source)
				require.Same(t, authn.Anonymous, auth)
				return
			}
			require.Contains(t, source, tt.wantSource)
			require.Contains(t, logBuf.String(), "credentials for "+repo.RegistryStr()+" from "+source)
			for _, secret := range []string{got.Password, got.IdentityToken} {
				if secret != "" {
					require.NotContains(t, logBuf.String(), secret)
				}
			}
		})
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

// homeWith returns a HOME whose .docker is a copy of dir.
func homeWith(t *testing.T, dir string) string {
	t.Helper()
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".docker"), 0o700))
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".docker", "config.json"), data, 0o600))
	return home
}

func TestInvalidCredentialsConfigIsReportedWithoutTheSecret(t *testing.T) {
	badFile := writeConfig(t, `{"auths":{"r.example.com":{"auth":"`+testCanary)
	tests := []struct {
		name string
		opts Options
		env  map[string]string
		want []string
	}{
		{"registry-auth not JSON", Options{RegistryAuth: `{"auths": ` + testCanary}, nil,
			[]string{`input "registry-auth" is not a Docker config JSON`, "invalid JSON at byte", "HARBOR_ROBOT_CREDS_JSON"}},
		{"registry-auth neither JSON nor base64", Options{RegistryAuth: testCanary + "!!"}, nil,
			[]string{`input "registry-auth"`, "neither a JSON object nor base64"}},
		{"registry-auth base64 of something else", Options{RegistryAuth: b64(testCanary)}, nil,
			[]string{`input "registry-auth"`, "base64, but not of a JSON object"}},
		{"auth field not user:password", Options{RegistryAuth: `{"auths":{"r.example.com":{"auth":"` + b64(testCanary) + `"}}}`}, nil,
			[]string{`auths["r.example.com"].auth is not base64 of username:password`}},
		{"auth field of the wrong type", Options{RegistryAuth: `{"auths":{"r.example.com":{"auth":["` + testCanary + `"]}}}`}, nil,
			[]string{`input "registry-auth"`, "must be a JSON"}},
		{"DOCKER_AUTH_CONFIG invalid", Options{}, map[string]string{"DOCKER_AUTH_CONFIG": `{"auths":{"x":` + testCanary + `}}`},
			[]string{"DOCKER_AUTH_CONFIG is not a Docker config JSON", "unset it"}},
		{"config file invalid", Options{}, map[string]string{"DOCKER_CONFIG": badFile},
			[]string{"the Docker config " + filepath.Join(badFile, "config.json") + " is not valid", "DOCKER_CONFIG"}},
		{"username without password", Options{Username: "u"}, nil, []string{`input "username" is set but "password" is empty`}},
		{"password without username", Options{Password: testCanary}, nil, []string{`input "password" is set but "username" is empty`}},
		{"insecure entry with a path", Options{Insecure: []string{"127.0.0.1:5000/team"}}, nil, []string{`input "insecure-registries": "127.0.0.1:5000/team" is not a registry host[:port]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Getenv = func(k string) string { return tt.env[k] }
			tt.opts.Ambient = platformCredential(tt.env)
			_, err := newClient(tt.opts, "")
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), testCanary)
		})
	}
}

func TestLegacyDockercfgFormat(t *testing.T) {
	c, err := newClient(Options{RegistryAuth: `{"old.example.com":{"auth":"` + b64("old:pass") + `","email":"a@b"}}`}, "")
	require.NoError(t, err)
	repo, err := name.NewRepository("old.example.com/app")
	require.NoError(t, err)
	auth, err := c.Keychain().Resolve(repo)
	require.NoError(t, err)
	got, err := authn.Authorization(t.Context(), auth)
	require.NoError(t, err)
	require.Equal(t, authn.AuthConfig{Username: "old", Password: "pass"}, *got)
}

func TestCloudKeychainsOnlyForTheirHosts(t *testing.T) {
	tests := []struct {
		host string
		want string
	}{
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com", SourceECR},
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", SourceECR},
		{"myreg.azurecr.io", SourceACR},
		{"gcr.io", SourceGoogle},
		{"eu.gcr.io", SourceGoogle},
		{"europe-west1-docker.pkg.dev", SourceGoogle},
		{"ghcr.io", ""},
		{"index.docker.io", ""},
		{"127.0.0.1:5000", ""},
		{"evil-amazonaws.com.example.org", ""},
		{"notgcr.io", ""},
		{"azurecr.io.example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			kc, source := cloudKeychain(tt.host)
			require.Equal(t, tt.want, source)
			require.Equal(t, tt.want != "", kc != nil)
		})
	}
}

func TestInsecureHostMatching(t *testing.T) {
	set, err := parseInsecure([]string{"127.0.0.1:5000", "registry.local", "https://Secure.Example.com:443/", " "})
	require.NoError(t, err)
	tests := []struct {
		host, scheme string
		want         bool
	}{
		{"127.0.0.1:5000", "http", true},
		{"127.0.0.1:5001", "http", false},
		{"registry.local", "http", true},
		{"registry.local:8080", "https", true},
		{"secure.example.com", "https", true},
		{"secure.example.com", "http", false},
		{"secure.example.com:443", "", true},
		{"other.example.com", "https", false},
	}
	for _, tt := range tests {
		t.Run(tt.host+" "+tt.scheme, func(t *testing.T) {
			require.Equal(t, tt.want, set.contains(tt.host, tt.scheme))
		})
	}
}

// platformCredential stands in for internal/ci's Job.RegistryCredential
// (tested there): GitLab's CI_REGISTRY credentials for its host, GitHub's
// GITHUB_TOKEN for ghcr.io.
func platformCredential(env map[string]string) func(string) (string, string, string, bool) {
	return func(host string) (string, string, string, bool) {
		if r := strings.TrimPrefix(env["CI_REGISTRY"], "https://"); r != "" && r == host && env["CI_REGISTRY_USER"] != "" {
			return env["CI_REGISTRY_USER"], env["CI_REGISTRY_PASSWORD"], "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD", true
		}
		if host == "ghcr.io" && env["GITHUB_TOKEN"] != "" {
			user := env["GITHUB_ACTOR"]
			if user == "" {
				user = "x-access-token"
			}
			return user, env["GITHUB_TOKEN"], "GITHUB_TOKEN", true
		}
		return "", "", "", false
	}
}
