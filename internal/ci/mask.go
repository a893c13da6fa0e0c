package ci

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hoist-ci/hoist/internal/redact"
)

// redacted replaces a masked secret in everything this package writes.
const redacted = "***"

// minMaskedLine is the shortest line of a multi-line secret that is masked
// on its own: masking "{" or "}" of a pretty-printed JSON credential would
// blank every brace in the log and protect nothing.
const minMaskedLine = 4

// masker holds the secrets of a run and redacts them.
type masker struct {
	mu       sync.RWMutex
	patterns map[string]bool
	r        *strings.Replacer
}

// add registers a secret. It returns the values to register with the
// platform (GitHub ::add-mask::): the secret itself when it is one line,
// otherwise each of its lines long enough to mean something.
func (m *masker) add(secret string) []string {
	if strings.TrimSpace(secret) == "" {
		return nil
	}
	m.mu.RLock()
	known := m.patterns[secret]
	m.mu.RUnlock()
	if known {
		return nil // registered (and announced) already
	}
	var platform []string
	lines := strings.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' })
	if len(lines) == 1 {
		platform = append(platform, lines[0])
	} else {
		for _, l := range lines {
			if l = strings.TrimSpace(l); len(l) >= minMaskedLine {
				platform = append(platform, l)
			}
		}
	}
	// Redact the value, its lines, and the encodings it takes when it ends
	// up inside a quoted string, a workflow command, or a URL.
	// Its base64 forms too, whatever precedes it ("user:" in a Basic
	// credential shifts the encoding).
	forms := append([]string{secret}, platform...)
	for _, f := range append([]string(nil), forms...) {
		q := strconv.Quote(f)
		forms = append(forms, q[1:len(q)-1], escapeData(f), escapeProperty(f), url.QueryEscape(f), url.PathEscape(f),
			azureEscapeData(f), azureEscapeProperty(f))
		forms = append(forms, redact.Base64Forms(f)...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.patterns == nil {
		m.patterns = map[string]bool{}
	}
	changed := false
	for _, f := range forms {
		if f != "" && !m.patterns[f] {
			m.patterns[f] = true
			changed = true
		}
	}
	if changed {
		all := make([]string, 0, len(m.patterns))
		for p := range m.patterns {
			all = append(all, p)
		}
		// Longest first: strings.Replacer prefers the earlier of two
		// patterns matching at the same position.
		sort.Slice(all, func(a, b int) bool {
			if len(all[a]) != len(all[b]) {
				return len(all[a]) > len(all[b])
			}
			return all[a] < all[b]
		})
		args := make([]string, 0, 2*len(all))
		for _, p := range all {
			args = append(args, p, redacted)
		}
		m.r = strings.NewReplacer(args...)
	}
	return platform
}

// redact replaces every registered secret in s, then every credential
// Redact recognizes by its form.
func (m *masker) redact(s string) string {
	m.mu.RLock()
	r := m.r
	m.mu.RUnlock()
	if r != nil {
		s = r.Replace(s)
	}
	return redact.String(s)
}

// contains reports whether s holds a registered secret or a credential.
func (m *masker) contains(s string) bool { return m.redact(s) != s }

// escapeData and escapeProperty are the workflow-command escapings (the
// same as go-githubactions', which it does not export).
func escapeData(v string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(v)
}

func escapeProperty(v string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(v)
}

// console serialises writes to one stream. Its masked view redacts every
// write and, on a platform whose agent reads commands anywhere in a line
// (Azure Pipelines), defuses them; its raw view is for the platform's
// commands only. Write errors are dropped: a closed log must not fail a
// release (and go-githubactions panics on them).
type console struct {
	mu     sync.Mutex
	w      io.Writer
	masks  *masker
	defuse func(string) string // nil: none
}

// defuser is what keeps plain log text from being read as a command.
func defuser(p Platform) func(string) string {
	if p == PlatformAzure {
		return azureDefuse
	}
	return nil
}

type consoleWriter struct {
	c    *console
	mask bool
}

// redactPiece bounds the text redacted at once: a large write (a diff of a
// large file) is redacted a run of whole lines at a time, so masking costs
// a few copies of a piece, not of the write.
const redactPiece = 64 << 10

func (w consoleWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for rest := p; len(rest) > 0; {
		piece := rest
		if len(piece) > redactPiece {
			piece = piece[:redactPiece]
			if nl := bytes.LastIndexByte(piece, '\n'); nl >= 0 {
				piece = piece[:nl+1]
			} else if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
				piece = rest[:nl+1]
			} else {
				piece = rest
			}
		}
		rest = rest[len(piece):]
		s := string(piece)
		if w.mask {
			s = w.c.masks.redact(s)
			if w.c.defuse != nil {
				s = w.c.defuse(s)
			}
		}
		_, _ = io.WriteString(w.c.w, s)
	}
	return len(p), nil
}

func (c *console) masked() io.Writer { return consoleWriter{c: c, mask: true} }
func (c *console) raw() io.Writer    { return consoleWriter{c: c} }

func (c *console) printf(format string, args ...any) {
	fmt.Fprintf(c.masked(), format, args...)
}

// counter numbers GitLab sections.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

// randomDelimiter is the heredoc delimiter of a GitHub file command, random
// like actions/toolkit's so that a value cannot end the block early.
func randomDelimiter() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "ghadelimiter_" + hex.EncodeToString(b)
}

// Mask registers a secret: it is redacted (***) from every line this
// package writes from now on and announced to the platform (each line of a
// multi-line secret) so that it hides it too: ::add-mask:: on GitHub,
// ##vso[task.setsecret] on Azure Pipelines.
func (j *Job) Mask(secret string) {
	for _, v := range j.masks.add(secret) {
		switch j.Platform {
		case PlatformGitHub:
			j.ghRaw.AddMask(v)
		case PlatformAzure:
			j.azureSetSecret(v)
		}
	}
}

// credentialEnv are variables that hold credentials by convention; hoist
// reads some of them and masks all of them.
func credentialEnv() []string {
	return []string{
		"GITHUB_TOKEN", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
		"CI_JOB_TOKEN", "CI_REGISTRY_PASSWORD", "CI_DEPENDENCY_PROXY_PASSWORD", "CI_DEPLOY_PASSWORD",
		"DOCKER_AUTH_CONFIG", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_CLIENT_SECRET",
		"GOOGLE_OAUTH_ACCESS_TOKEN", "SYSTEM_ACCESSTOKEN",
		"AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
		"GIT_PASSWORD", "GIT_TOKEN",
	}
}

// credentialParams are URL query parameters that carry a credential: an
// Azure SAS signature, S3 and GCS presigned URLs' signatures, tokens.
var credentialParams = map[string]bool{
	"sig": true, "signature": true, "x-amz-signature": true, "x-amz-security-token": true,
	"x-amz-credential": true, "x-goog-signature": true, "x-goog-credential": true,
	"token": true, "access_token": true, "code": true,
}

// urlCredentials returns the credentials written inside a URL, wherever it
// appears in s: the password of user:password@, a user name standing alone
// (git://TOKEN@host, as kaniko documents it), and signed or token query
// parameters. URLs without credentials give nothing.
func urlCredentials(s string) []string {
	if !strings.Contains(s, "://") {
		return nil
	}
	var out []string
	for _, field := range strings.Fields(s) {
		i := strings.Index(field, "://")
		if i < 0 {
			continue
		}
		u, err := url.Parse(field[max(0, strings.LastIndexAny(field[:i], ",;\"'(")+1):])
		if err != nil {
			continue
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				out = append(out, p)
			} else if n := u.User.Username(); n != "" && !isPlainUser(n) {
				out = append(out, n)
			}
		}
		for k, vs := range u.Query() {
			if credentialParams[strings.ToLower(k)] {
				for _, v := range vs {
					if len(v) >= minMaskedLine {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

// isPlainUser tells a user name from a token in user-info without a
// password: git@host and oauth2@host are names; a long opaque string is a
// token (git://TOKEN@github.com/...).
func isPlainUser(n string) bool {
	switch n {
	case "git", "oauth2", "x-access-token", "x-token-auth", "gitlab-ci-token", "AWS", "anonymous":
		return true
	}
	return len(n) < 20
}
