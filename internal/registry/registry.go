// Package registry is hoist's access to container registries: which
// credentials to use (keychains), how to reach a host (transport, retries,
// the insecure list, HTTP/1.1) and how to name references.
package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

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
	// Getenv reads the environment for the credential conventions
	// (DOCKER_AUTH_CONFIG, DOCKER_CONFIG, CI_REGISTRY_*, GITHUB_TOKEN, cloud
	// keychains). Nil means an empty environment.
	Getenv func(string) string
	// Transport is the base transport (tests put a proxy or a counter here).
	// Nil means a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Log receives retry notices. Nil discards them.
	Log *slog.Logger
}

// Client holds the settings shared by every registry call of one run.
type Client struct {
	opts     Options
	insecure map[string]bool
	base     http.RoundTripper
}

// New validates the options and returns a Client.
func New(opts Options) (*Client, error) {
	c := &Client{opts: opts, insecure: map[string]bool{}}
	for _, h := range opts.Insecure {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		c.insecure[strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://")] = true
	}
	c.base = opts.Transport
	if c.base == nil {
		c.base = http.DefaultTransport.(*http.Transport).Clone()
	}
	return c, nil
}

// IsInsecure reports whether host[:port] is on the insecure list.
func (c *Client) IsInsecure(host string) bool { return c.insecure[host] }

func (c *Client) nameOptions(s string) []name.Option {
	host := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		host = s[:i]
	}
	if c.insecure[host] {
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
func (c *Client) RemoteOptions(ctx context.Context, targets ...name.Registry) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(c.base),
		remote.WithUserAgent(c.opts.UserAgent),
	}
}
