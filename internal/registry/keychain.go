package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ecr "github.com/awslabs/amazon-ecr-credential-helper/ecr-login"
	acr "github.com/chrismellard/docker-credential-acr-env/pkg/credhelper"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
)

// Names of the credential sources, as Source reports them.
const (
	SourceInputs       = "the username and password inputs"
	SourceRegistryAuth = "the registry-auth input"
	SourceDockerAuth   = "DOCKER_AUTH_CONFIG"
	SourceECR          = "the Amazon ECR keychain (AWS credentials)"
	SourceACR          = "the Azure ACR keychain (AZURE_* environment / workload identity)"
	SourceGoogle       = "the Google keychain (application default credentials / gcloud)"
)

// helperTimeout bounds one run of a docker-credential-* helper.
const helperTimeout = 30 * time.Second

// dockerHubAliases are the names Docker config files use for Docker Hub.
var dockerHubAliases = map[string]bool{
	"docker.io":               true,
	"index.docker.io":         true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// authKey is one "auths" entry of a Docker config, keyed by host and an
// optional repository namespace (podman-style "host/namespace" keys).
type authKey struct {
	host, path string
	cfg        authn.AuthConfig
}

// dockerConfig is a parsed Docker config JSON and where it came from.
type dockerConfig struct {
	source      string // for Source() and logs
	auths       []authKey
	credHelpers map[string]string // host → helper suffix
	credsStore  string
}

type rawAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

type rawConfig struct {
	Auths       map[string]rawAuth `json:"auths"`
	CredHelpers map[string]string  `json:"credHelpers"`
	CredsStore  string             `json:"credsStore"`
}

// loadConfigs reads, in order, registry-auth, DOCKER_AUTH_CONFIG, the Docker
// config file and kaniko's config file.
func (c *Client) loadConfigs() error {
	if v := strings.TrimSpace(c.opts.RegistryAuth); v != "" {
		cfg, err := parseConfigValue(v, SourceRegistryAuth)
		if err != nil {
			return fmt.Errorf("input \"registry-auth\" is not a Docker config JSON (%s), raw or base64: %v; "+
				"set it to the content of a Docker config.json (such as a Harbor robot account's HARBOR_ROBOT_CREDS_JSON) or leave it empty", configShape, err)
		}
		c.configs = append(c.configs, cfg)
	}
	if v := strings.TrimSpace(c.getenv("DOCKER_AUTH_CONFIG")); v != "" {
		cfg, err := parseConfigValue(v, SourceDockerAuth)
		if err != nil {
			return fmt.Errorf("environment variable DOCKER_AUTH_CONFIG is not a Docker config JSON (%s): %v; "+
				"set it to the content of a Docker config.json or unset it", configShape, err)
		}
		c.configs = append(c.configs, cfg)
	}
	var paths []string
	dir := c.getenv("DOCKER_CONFIG")
	if dir == "" {
		if home := c.getenv("HOME"); home != "" {
			dir = filepath.Join(home, ".docker")
		}
	}
	if dir != "" {
		paths = append(paths, filepath.Join(dir, "config.json"))
	}
	if c.kanikoConfig != "" && (len(paths) == 0 || filepath.Clean(paths[0]) != filepath.Clean(c.kanikoConfig)) {
		paths = append(paths, c.kanikoConfig)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading Docker config %s: %w", p, err)
		}
		cfg, err := parseConfig(data, p)
		if err != nil {
			return fmt.Errorf("the Docker config %s is not valid: %v; fix or remove the file, or point DOCKER_CONFIG at another directory", p, err)
		}
		c.configs = append(c.configs, cfg)
	}
	return nil
}

const configShape = `{"auths":{"<registry>":{"auth":"<base64 of user:password>"}}}`

// parseConfigValue parses a Docker config given as raw JSON or base64 of it.
// Its errors never quote the value.
func parseConfigValue(v, source string) (dockerConfig, error) {
	if strings.HasPrefix(v, "{") {
		return parseConfig([]byte(v), source)
	}
	compact := strings.Join(strings.Fields(v), "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(compact)
		if err != nil {
			continue
		}
		if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "{") {
			return parseConfig([]byte(t), source)
		}
		return dockerConfig{}, errors.New("it is base64, but not of a JSON object")
	}
	return dockerConfig{}, errors.New("it is neither a JSON object nor base64")
}

// parseConfig parses a Docker config JSON (or a legacy .dockercfg auths map).
func parseConfig(data []byte, source string) (dockerConfig, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return dockerConfig{}, jsonProblem(err)
	}
	var raw rawConfig
	_, hasAuths := top["auths"]
	_, hasHelpers := top["credHelpers"]
	_, hasStore := top["credsStore"]
	if !hasAuths && !hasHelpers && !hasStore && len(top) > 0 && looksLegacy(top) {
		if err := json.Unmarshal(data, &raw.Auths); err != nil {
			return dockerConfig{}, jsonProblem(err)
		}
	} else if err := json.Unmarshal(data, &raw); err != nil {
		return dockerConfig{}, jsonProblem(err)
	}
	cfg := dockerConfig{source: source, credHelpers: map[string]string{}, credsStore: raw.CredsStore}
	keys := make([]string, 0, len(raw.Auths))
	for k := range raw.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := raw.Auths[k]
		ac := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			u, p, err := decodeBasic(a.Auth)
			if err != nil {
				return dockerConfig{}, fmt.Errorf("auths[%q].auth is not base64 of username:password", k)
			}
			ac.Username, ac.Password = u, p
		}
		if ac == (authn.AuthConfig{}) {
			continue // e.g. {} entries next to a credsStore
		}
		host, path := splitKey(k)
		if host == "" {
			return dockerConfig{}, errors.New("auths has an entry with an empty registry name")
		}
		cfg.auths = append(cfg.auths, authKey{host: host, path: path, cfg: ac})
	}
	for k, h := range raw.CredHelpers {
		if host, _ := splitKey(k); host != "" && h != "" {
			cfg.credHelpers[host] = h
		}
	}
	return cfg, nil
}

// looksLegacy reports whether every top-level value is an object with an
// "auth" key, like the pre-1.7 ~/.dockercfg format.
func looksLegacy(top map[string]json.RawMessage) bool {
	for _, v := range top {
		var a map[string]json.RawMessage
		if json.Unmarshal(v, &a) != nil {
			return false
		}
		if _, ok := a["auth"]; !ok {
			return false
		}
	}
	return true
}

// jsonProblem describes a JSON error without quoting the input.
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Errorf("field %q must be a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return errors.New("it must be a JSON object")
	default:
		return errors.New("invalid JSON")
	}
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	}
	return k
}

func decodeBasic(s string) (user, pass string, err error) {
	var b []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err = enc.DecodeString(strings.TrimSpace(s)); err == nil {
			break
		}
	}
	if err != nil {
		return "", "", err
	}
	u, p, ok := strings.Cut(string(b), ":")
	if !ok || u == "" {
		return "", "", errors.New("not username:password")
	}
	return u, strings.Trim(p, "\x00"), nil
}

// splitKey turns a Docker config key into a normalized host and, for
// scheme-less keys, a repository namespace. Like Docker, a scheme-prefixed
// key ("https://index.docker.io/v1/") names a host only.
func splitKey(k string) (host, path string) {
	k = strings.TrimSpace(k)
	if strings.Contains(k, "://") {
		if u, err := url.Parse(k); err == nil && u.Host != "" {
			return normalizeHost(u.Host), ""
		}
		_, k, _ = strings.Cut(k, "://")
		host, _, _ = strings.Cut(k, "/")
		return normalizeHost(host), ""
	}
	host, path, _ = strings.Cut(k, "/")
	return normalizeHost(host), strings.Trim(path, "/")
}

// normalizeHost lower-cases a host and maps Docker Hub's aliases to
// index.docker.io, the name go-containerregistry uses.
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "/"))
	if dockerHubAliases[h] {
		return "index.docker.io"
	}
	return h
}

// hostOf strips a scheme and path from a host given by a user.
func hostOf(s string) string {
	h, _ := splitKey(s)
	return h
}

// resolution is the outcome of a credential lookup.
type resolution struct {
	auth   authn.Authenticator
	source string // "" for anonymous
}

// keychain resolves credentials per registry in hoist's order.
type keychain struct {
	c       *Client
	targets map[string]bool
}

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

func (k keychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	reg := r.RegistryStr()
	target := k.targets[reg]
	key := fmt.Sprintf("%s|%t", r.String(), target)
	k.c.mu.Lock()
	res, ok := k.c.cache[key]
	k.c.mu.Unlock()
	if !ok {
		res = k.c.lookup(ctx, r, target)
		k.c.mu.Lock()
		k.c.cache[key] = res
		k.c.mu.Unlock()
	}
	k.c.mu.Lock()
	k.c.sources[reg] = res.source
	logKey := reg + "|" + res.source
	first := !k.c.logged[logKey]
	k.c.logged[logKey] = true
	k.c.mu.Unlock()
	if first {
		if res.source == "" {
			k.c.log.Debug(fmt.Sprintf("no credentials for %s: anonymous access", reg), "registry", reg)
		} else {
			k.c.log.Info(fmt.Sprintf("credentials for %s from %s", reg, res.source), "registry", reg, "source", res.source)
		}
	}
	return res.auth, nil
}

// lookup walks the sources in order; the first that yields credentials wins.
func (c *Client) lookup(ctx context.Context, r authn.Resource, target bool) resolution {
	reg := r.RegistryStr()
	repoPath := strings.TrimPrefix(strings.TrimPrefix(r.String(), reg), "/")
	basic := func(u, p, source string) resolution {
		return resolution{auth: authn.FromConfig(authn.AuthConfig{Username: u, Password: p}), source: source}
	}
	if (target || c.isTargetHost(reg)) && c.opts.Username != "" && c.opts.Password != "" {
		return basic(c.opts.Username, c.opts.Password, SourceInputs)
	}
	for _, cfg := range c.configs {
		if res, ok := c.fromConfig(ctx, cfg, reg, repoPath); ok {
			return res
		}
	}
	if c.opts.Ambient != nil {
		if u, p, source, ok := c.opts.Ambient(reg); ok && u != "" && p != "" {
			return basic(u, p, source)
		}
	}
	if kc, source := cloudKeychain(reg); kc != nil {
		auth, err := authn.Resolve(ctx, kc, r)
		if err == nil && auth != nil && auth != authn.Anonymous {
			return resolution{auth: auth, source: source}
		}
		if err != nil {
			c.log.Warn(fmt.Sprintf("%s found no credentials for %s: %v", source, reg, err), "registry", reg)
		}
	}
	return resolution{auth: authn.Anonymous}
}

// cloudKeychain returns the cloud provider's keychain for hosts of that
// provider only, so other hosts never wait on metadata probes.
func cloudKeychain(reg string) (authn.Keychain, string) {
	host := strings.ToLower(reg)
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	switch {
	case isECR(host):
		return authn.NewKeychainFromHelper(ecr.NewECRHelper(ecr.WithLogger(io.Discard))), SourceECR
	case isACR(host):
		return authn.NewKeychainFromHelper(acr.NewACRCredentialsHelper()), SourceACR
	case isGoogle(host):
		return google.Keychain, SourceGoogle
	}
	return nil, ""
}

func isECR(host string) bool {
	return strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")
}

func isACR(host string) bool {
	for _, s := range []string{".azurecr.io", ".azurecr.cn", ".azurecr.de", ".azurecr.us"} {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func isGoogle(host string) bool {
	return host == "gcr.io" || strings.HasSuffix(host, ".gcr.io") || strings.HasSuffix(host, "-docker.pkg.dev")
}

// fromConfig resolves reg (and the repository path) in one Docker config:
// its credHelpers entry, then the most specific auths entry, then credsStore.
func (c *Client) fromConfig(ctx context.Context, cfg dockerConfig, reg, repoPath string) (resolution, bool) {
	if helper := cfg.credHelpers[reg]; helper != "" {
		if res, ok := c.fromHelper(ctx, helper, cfg.source, reg); ok {
			return res, true
		}
	}
	best := -1
	for i, a := range cfg.auths {
		if a.host != reg {
			continue
		}
		if a.path != "" && repoPath != a.path && !strings.HasPrefix(repoPath, a.path+"/") {
			continue
		}
		if best < 0 || len(a.path) > len(cfg.auths[best].path) {
			best = i
		}
	}
	if best >= 0 {
		return resolution{auth: authn.FromConfig(cfg.auths[best].cfg), source: cfg.source}, true
	}
	if cfg.credsStore != "" {
		return c.fromHelper(ctx, cfg.credsStore, cfg.source, reg)
	}
	return resolution{}, false
}

// fromHelper runs docker-credential-<helper> get, found on Getenv("PATH").
// A missing or failing helper is logged and skipped, so the next source
// still gets its turn.
func (c *Client) fromHelper(ctx context.Context, helper, configSource, reg string) (resolution, bool) {
	bin := "docker-credential-" + helper
	source := fmt.Sprintf("%s (credential helper configured in %s)", bin, configSource)
	path := lookPath(bin, c.getenv("PATH"))
	if path == "" {
		c.log.Warn(fmt.Sprintf("%s configures %s for %s, but it is not on PATH; trying the next credential source", configSource, bin, reg), "registry", reg)
		return resolution{}, false
	}
	serverURL := reg
	if reg == "index.docker.io" {
		serverURL = authn.DefaultAuthKey
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	prog := func(args ...string) client.Program {
		return &helperProgram{cmd: exec.CommandContext(ctx, path, args...)}
	}
	creds, err := client.Get(prog, serverURL)
	if err != nil {
		if !credentials.IsErrCredentialsNotFound(err) {
			c.log.Warn(fmt.Sprintf("%s failed for %s (%v); trying the next credential source", bin, reg, err), "registry", reg)
		}
		return resolution{}, false
	}
	if creds.Secret == "" {
		return resolution{}, false
	}
	ac := authn.AuthConfig{Username: creds.Username, Password: creds.Secret}
	if creds.Username == "<token>" {
		ac = authn.AuthConfig{IdentityToken: creds.Secret}
	}
	return resolution{auth: authn.FromConfig(ac), source: source}, true
}

// helperProgram runs a credential helper with a context (the library's own
// runner has none and copies the helper's stderr to ours).
type helperProgram struct{ cmd *exec.Cmd }

func (p *helperProgram) Output() ([]byte, error) { return p.cmd.Output() }
func (p *helperProgram) Input(in io.Reader)      { p.cmd.Stdin = in }

// lookPath finds an executable in a PATH value.
func lookPath(file, pathEnv string) string {
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
