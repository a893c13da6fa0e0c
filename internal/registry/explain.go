package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hoist-ci/hoist/internal/need"
	"github.com/hoist-ci/hoist/internal/redact"
)

// Action is what a registry request was doing, for messages: a typed
// value, so a caller cannot pass a wording Explain does not know.
type Action int

const (
	Read Action = iota + 1
	Push
)

// String is the action as a message starts it: "reading", "pushing to".
func (a Action) String() string {
	if a == Push {
		return "pushing to"
	}
	return "reading"
}

// verb is the action as a verb after "may": "read", "push to".
func (a Action) verb() string {
	if a == Push {
		return "push to"
	}
	return "read"
}

// AuthError is a registry's refusal (401/403) explained: which registry,
// what hoist found, what to set. Its text never contains a secret. Its
// Need lets the platform layer add how to give credentials there.
type AuthError struct {
	Action     Action
	Repository string
	Registry   string
	Status     int
	Source     string // "" when hoist found no credentials
	Hint       string // what to set
	Err        error
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: the registry answered %d %s: ", e.Action, e.Repository, e.Status, http.StatusText(e.Status))
	if e.Source == "" {
		fmt.Fprintf(&b, "hoist found no credentials for %s; %s", e.Registry, e.Hint)
	} else {
		verb := "were refused"
		if e.Status == http.StatusForbidden {
			verb = "do not allow this"
		}
		fmt.Fprintf(&b, "the credentials for %s from %s %s; check that they are valid and may %s %s, or %s",
			e.Registry, e.Source, verb, e.Action.verb(), e.Repository, e.Hint)
	}
	if e.Action == Read {
		b.WriteString(" (some registries also answer 401/403 for a repository that does not exist: check the name)")
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " [%v]", e.Err)
	}
	return b.String()
}

func (e *AuthError) Unwrap() error { return e.Err }

// Need names what is missing: credentials that may read, or push to, the
// registry.
func (e *AuthError) Need() (need.Kind, string) {
	if e.Action == Push {
		return need.RegistryPush, e.Registry
	}
	return need.RegistryRead, e.Registry
}

// IsNotFound reports whether err is a registry's 404 (or a MANIFEST_UNKNOWN,
// NAME_UNKNOWN or BLOB_UNKNOWN error code): the reference does not exist.
func IsNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return true
		}
	}
	return false
}

// explained adds a hint to an error without changing what it wraps.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// IsAuthError reports whether err is a registry's 401/403 (or an
// UNAUTHORIZED/DENIED error code).
func IsAuthError(err error) (status int, ok bool) {
	var te *transport.Error
	if !errors.As(err, &te) {
		return 0, false
	}
	if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
		return te.StatusCode, true
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.UnauthorizedErrorCode:
			return http.StatusUnauthorized, true
		case transport.DeniedErrorCode:
			return http.StatusForbidden, true
		}
	}
	return 0, false
}

// Explain turns a registry error into one that says what to do: a 401/403
// becomes an *AuthError naming the registry, where hoist's credentials came
// from (or that there were none) and what to set; a plain-HTTP refusal or a
// TLS failure gets the insecure-registries hint. Any other error is returned
// unchanged.
//
// Whatever it returns has its message redacted (ci.Redact): credentials a
// server echoed, upload states and signed URLs never reach an error.
func (c *Client) Explain(err error, repo name.Repository, action Action) error {
	return redact.Error(c.explain(err, repo, action), c.sentCredentials()...)
}

func (c *Client) explain(err error, repo name.Repository, action Action) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	reg := repo.RegistryStr()
	if status, ok := IsAuthError(err); ok {
		return &AuthError{
			Action:     action,
			Repository: repo.String(),
			Registry:   reg,
			Status:     status,
			Source:     c.Source(reg),
			Hint:       c.hint(reg),
			Err:        err,
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
		return &explained{msg: fmt.Sprintf("%s %s: %v (nothing answered at %s, after %d attempts: check that the registry is running "+
			"and reachable from this job — host, port, proxy settings; push-retry raises the attempts)",
			action, repo, err, reg, c.opts.Retry.withDefaults().Attempts), err: err}
	}
	if c.IsInsecure(reg) {
		return err
	}
	var ie *InsecureError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cve):
		return &explained{msg: fmt.Sprintf("%s %s: %v (hoist cannot verify the TLS certificate of %s: install its CA certificate, "+
			"or add it to insecure-registries to skip verification: insecure-registries: %s)", action, repo, err, reg, reg), err: err}
	case errors.As(err, &ie):
		return &explained{msg: fmt.Sprintf("%s %s: %v", action, repo, ie), err: err}
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &explained{msg: fmt.Sprintf("%s %s: %v (%s serves plain HTTP: add it to insecure-registries: %s)", action, repo, err, reg, reg), err: err}
	}
	return err
}

// hint lists what to set for reg, most specific first: the cloud
// provider's credentials for its registries, then the inputs and Docker
// configs every platform has. How to give them on the job's CI platform is
// added by the platform layer (see need).
func (c *Client) hint(reg string) string {
	var specific []string
	host := strings.ToLower(reg)
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	switch {
	case isECR(host):
		specific = append(specific, "for Amazon ECR provide AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a web identity role)")
	case isACR(host):
		specific = append(specific, "for Azure ACR set AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE (workload identity)")
	case isGoogle(host):
		specific = append(specific, "for Google provide application default credentials (GOOGLE_APPLICATION_CREDENTIALS or workload identity)")
	}
	generic := fmt.Sprintf("set the username and password inputs, or registry-auth (a Docker config JSON, raw or base64, with an entry for %s), "+
		"or DOCKER_AUTH_CONFIG, or a $DOCKER_CONFIG/config.json that has credentials for %s", reg, reg)
	return strings.Join(append(specific, generic), "; ")
}
