// Package registry is hoist's access to container registries: which
// credentials to use (keychains), how to reach a host (transport, retries,
// the insecure list, HTTP/1.1) and how to name references.
package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options configure a Client. Every field may be left empty.
type Options struct {
	// Username and Password are credentials for the target registries
	// (see Client.RemoteOptions); they win over every other source.
	Username string
	Password string
	// RegistryAuth is a Docker config JSON ({"auths":{...}}), raw or base64.
	RegistryAuth string
	// Insecure lists registries (host[:port]) that may be reached over plain
	// HTTP or without TLS verification. No other registry is.
	Insecure []string
	// HTTP1 disables HTTP/2.
	HTTP1 bool
	// UserAgent is sent with every request (hoist/<version>).
	UserAgent string
	// Getenv reads the environment for Docker's credential conventions
	// (DOCKER_AUTH_CONFIG, DOCKER_CONFIG, HOME, PATH for credential helpers)
	// and proxy variables. Nil means an empty environment.
	Getenv func(string) string
	// Ambient gives the credentials the CI platform provides for a registry
	// host (GitLab's CI_REGISTRY_USER/CI_REGISTRY_PASSWORD for its registry,
	// GITHUB_TOKEN for ghcr.io), and their source's name; internal/ci
	// answers it. After the inputs and Docker configs, before the cloud
	// keychains. Nil: none.
	Ambient func(host string) (username, password, source string, ok bool)
	// Transport is the base transport (tests put a proxy or a counter here).
	// Nil means a clone of remote.DefaultTransport. TLS settings (skipping
	// verification for insecure hosts) and HTTP1 can only be applied when it
	// is an *http.Transport; any other RoundTripper is used as given.
	Transport http.RoundTripper
	// Log receives retry notices and the source of credentials per registry.
	// Nil discards them.
	Log *slog.Logger
	// Retry bounds the retries of one request. Zero values mean the defaults.
	Retry Retry
	// Mask, when set, is given every secret found inside a Docker config
	// (registry-auth, DOCKER_AUTH_CONFIG, config files) so the platform layer
	// can mask it before anything is logged: a base64 registry-auth hides the
	// passwords it carries from a mask of the input alone.
	Mask func(secret string)
}

// Retry bounds the retries of one HTTP request on 408/429/500/502/503/504
// and on connection resets.
type Retry struct {
	// Attempts is the total number of tries of one request (default 5).
	Attempts int
	// Initial is the first delay (default 250ms); it doubles per retry, with
	// jitter, up to Max (default 10s). A Retry-After header is honoured up to Max.
	Initial time.Duration
	Max     time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.Initial <= 0 {
		r.Initial = 250 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 10 * time.Second
	}
	if r.Max < r.Initial {
		r.Max = r.Initial
	}
	return r
}

// Client holds the settings shared by every registry call of one run.
type Client struct {
	opts      Options
	getenv    func(string) string
	log       *slog.Logger
	insecure  hostSet
	transport http.RoundTripper
	configs   []dockerConfig // registry-auth, DOCKER_AUTH_CONFIG, config files, in order
	// kanikoConfig is kaniko's config path, read when present.
	kanikoConfig string

	mu      sync.Mutex
	targets map[string]bool       // hosts written to: the inputs apply to every request there
	sources map[string]string     // registry → source of its credentials (last resolution)
	cache   map[string]resolution // resource|target → resolved credentials
	logged  map[string]bool       // registry|source already logged
	sent    map[string]bool       // Authorization headers sent
	secrets []string              // their credential values, longest first
}

// New validates the options and returns a Client. Invalid credentials
// configuration (registry-auth, DOCKER_AUTH_CONFIG, the Docker config file)
// is reported here, naming the input but never its value.
func New(opts Options) (*Client, error) {
	return newClient(opts, "/kaniko/.docker/config.json")
}

func newClient(opts Options, kanikoConfig string) (*Client, error) {
	c := &Client{
		opts:         opts,
		getenv:       opts.Getenv,
		log:          opts.Log,
		kanikoConfig: kanikoConfig,
		targets:      map[string]bool{},
		sources:      map[string]string{},
		cache:        map[string]resolution{},
		logged:       map[string]bool{},
		sent:         map[string]bool{},
	}
	if c.getenv == nil {
		c.getenv = func(string) string { return "" }
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if (opts.Username == "") != (opts.Password == "") {
		missing, set := "password", "username"
		if opts.Username == "" {
			missing, set = "username", "password"
		}
		return nil, fmt.Errorf("input %q is set but %q is empty: set both username and password, or neither", set, missing)
	}
	ins, err := parseInsecure(opts.Insecure)
	if err != nil {
		return nil, err
	}
	c.insecure = ins
	if err := c.loadConfigs(); err != nil {
		return nil, err
	}
	if opts.Mask != nil {
		for _, cfg := range c.configs {
			for _, a := range cfg.auths {
				for _, secret := range []string{a.cfg.Password, a.cfg.Auth, a.cfg.IdentityToken, a.cfg.RegistryToken} {
					if secret != "" {
						opts.Mask(secret)
					}
				}
			}
		}
	}
	c.transport = c.newTransport()
	return c, nil
}

// IsInsecure reports whether host[:port] is on the insecure list.
func (c *Client) IsInsecure(host string) bool { return c.insecure.contains(host, "") }

// AllowInsecure adds registries (host[:port]) to the insecure list, as a
// tool learns them (kaniko's --insecure-pull names the base images'
// registries, which the Dockerfile decides). Call it before the first
// request.
func (c *Client) AllowInsecure(hosts ...string) {
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if host, port, err := net.SplitHostPort(h); err == nil {
			c.insecure.exact[net.JoinHostPort(host, port)] = true
		} else if h != "" {
			c.insecure.anyPort[strings.Trim(h, "[]")] = true
		}
	}
}

func (c *Client) nameOptions(s string) []name.Option {
	host := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		host = s[:i]
	}
	if c.IsInsecure(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Ref parses an image reference (repo:tag, repo@digest, repo:tag@digest).
func (c *Client) Ref(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, c.nameOptions(s)...)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", s, err)
	}
	return ref, nil
}

// Repo parses a repository name (registry/path, no tag or digest).
func (c *Client) Repo(s string) (name.Repository, error) {
	repo, err := name.NewRepository(s, c.nameOptions(s)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("parsing repository %q: %w", s, err)
	}
	return repo, nil
}

// RemoteOptions returns the go-containerregistry options for one operation.
// targets are the registries written to: Username/Password apply to them only.
//
// Retries happen per HTTP request in hoist's transport (with the request body
// re-sent); go-containerregistry's own retries are limited to restarting a
// blob upload the registry lost track of.
func (c *Client) RemoteOptions(ctx context.Context, targets ...name.Registry) []remote.Option {
	r := c.opts.Retry.withDefaults()
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.Keychain(targets...)),
		remote.WithTransport(c.transport),
		remote.WithUserAgent(c.opts.UserAgent),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(restartUpload),
		remote.WithRetryBackoff(remote.Backoff{Duration: r.Initial, Factor: 2, Jitter: 0.5, Steps: 2}),
	}
}

// Pusher returns a remote.Pusher for one run: manifest and blob writes
// through it share one ping and one token per repository. Pass it to other
// calls with remote.Reuse.
func (c *Client) Pusher(ctx context.Context, targets ...name.Registry) (*remote.Pusher, error) {
	p, err := remote.NewPusher(c.RemoteOptions(ctx, targets...)...)
	if err != nil {
		return nil, fmt.Errorf("setting up registry writes: %w", err)
	}
	return p, nil
}

// Puller returns a remote.Puller for one run: reads through it share one
// ping and one token per repository.
func (c *Client) Puller(ctx context.Context, targets ...name.Registry) (*remote.Puller, error) {
	p, err := remote.NewPuller(c.RemoteOptions(ctx, targets...)...)
	if err != nil {
		return nil, fmt.Errorf("setting up registry reads: %w", err)
	}
	return p, nil
}

// Keychain returns the keychain of this client. Username/Password apply to
// the targets — the registries a tool writes to — for every request there,
// reads included (a base image on the registry the build pushes to), and
// to no other registry.
func (c *Client) Keychain(targets ...name.Registry) authn.Keychain {
	k := keychain{c: c, targets: map[string]bool{}}
	c.mu.Lock()
	for _, t := range targets {
		k.targets[t.RegistryStr()] = true
		c.targets[t.RegistryStr()] = true
	}
	c.mu.Unlock()
	return k
}

// isTargetHost reports whether a keychain named host as a target.
func (c *Client) isTargetHost(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.targets[host]
}

// Source names where the credentials last resolved for host (a registry
// such as "ghcr.io" or "127.0.0.1:5000") came from, e.g. "GITHUB_TOKEN",
// or "" when none were found (anonymous). It never returns a secret.
func (c *Client) Source(host string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sources[registryKey(host)]
}

// registryKey normalizes a host the way name.Registry does (docker.io →
// index.docker.io).
func registryKey(host string) string {
	host = hostOf(host)
	if r, err := name.NewRegistry(host); err == nil {
		return r.RegistryStr()
	}
	return host
}
