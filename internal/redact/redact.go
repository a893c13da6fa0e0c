// Package redact removes credentials from text: by their form (headers,
// URL user information, signed URLs, JSON token fields, JWTs, base64
// user:password) and by value (credentials a caller knows), and shortens
// text for messages. It is the one redaction every tool and package uses.
package redact

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Mask replaces a credential in everything redacted.
const Mask = "***"

// String masks the credentials a text can carry in any of the forms a
// server, a URL or a header gives them, without knowing their values:
//
//   - the value of an Authorization-like header (Authorization, PRIVATE-TOKEN,
//     JOB-TOKEN, X-Registry-Auth) and of a Basic or Bearer credential anywhere;
//   - the user information of a URL (https://user:password@host,
//     https://TOKEN@host) and x-access-token:TOKEN, oauth2:TOKEN,
//     gitlab-ci-token:TOKEN;
//   - query values that authorize (upload ?_state=, access_token=, token=,
//     signatures of presigned URLs: X-Amz-Signature, X-Goog-Signature, sig);
//   - JSON fields that hold credentials ("token", "access_token",
//     "password", "auth", "identitytoken", ...);
//   - JSON Web Tokens and GitHub/GitLab token formats (ghp_, github_pat_,
//     glpat-);
//   - base64 of user:password on its own (a header echoed without its
//     scheme).
//
// It is the one redaction every tool uses: the registry transport filters
// error bodies with it, gitops errors pass through it, and every line the
// platform layer writes (logs, errors, annotations, summaries, outputs) is
// redacted with it after the registered secrets. Values registered with
// Job.Mask are masked by value as well, base64 forms included.
//
// known are values to mask as well, wherever they appear (credentials a
// caller sent and therefore knows).
func String(s string, known ...string) string {
	if s == "" {
		return s
	}
	for _, k := range known {
		if len(k) >= minKnown {
			s = strings.ReplaceAll(s, k, Mask)
		}
	}
	lower := strings.ToLower(s) // *** never adds a hint: one lowering serves every pattern
	for _, p := range credentialPatterns {
		if p.hint != "" && !strings.Contains(lower, p.hint) {
			continue
		}
		s = p.replace(s)
	}
	return redactBase64Pairs(s)
}

// minKnown is the shortest known value Redact masks: masking a value of a
// character or two would blank ordinary text and protect nothing.
const minKnown = 4

// Error returns err with its message Mask (nil for nil), known
// values masked too. The original stays reachable through errors.Is and
// errors.As.
func Error(err error, known ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := String(msg, known...)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// credentialPattern replaces the secret part (the group named s) of each
// match with ***, keeping the rest.
type credentialPattern struct {
	re *regexp.Regexp
	// hint is a lowercase substring every match contains: a cheap test
	// before the regular expression runs ("" to always run it).
	hint string
	// keep, when set, leaves a match alone (a Bearer challenge's
	// parameters are not credentials).
	keep func(s string, start, end int) bool
}

func (p credentialPattern) replace(s string) string {
	idx := p.re.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	secret := p.re.SubexpIndex("s")
	var b strings.Builder
	last := 0
	for _, m := range idx {
		start, end := m[2*secret], m[2*secret+1]
		if start < 0 || (p.keep != nil && p.keep(s, start, end)) {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(Mask)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

var credentialPatterns = []credentialPattern{
	// Authorization: <anything up to the end of the value>.
	{re: regexp.MustCompile(`(?i)\b(?:proxy-)?(?:authorization|private-token|job-token|x-registry-auth|x-auth-token)["']?\s*[:=]\s*["']?(?P<s>[^\s"',;\]\[]+(?:[ \t]+[^\s"',;\]\[]+)?)`)},
	// Basic/Bearer <credential>, also outside a header.
	{re: regexp.MustCompile(`(?i)\b(?:basic|bearer)\s+(?P<s>[^\s"',;:<>\\]{6,})`), keep: challengeParameter},
	// scheme://user:password@ and scheme://token@.
	{re: regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://(?P<s>[^\s/@?#"'<>]+)@`), hint: "://"},
	// x-access-token:TOKEN and its kin outside a URL.
	{re: regexp.MustCompile(`(?i)\b(?:x-access-token|oauth2|gitlab-ci-token|x-token-auth|git-token):(?P<s>[^\s@/"'<>]+)`)},
	// Query values that authorize.
	{re: regexp.MustCompile(`(?i)[?&;](?:_state|access_token|refresh_token|id_token|token|private_token|code|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|x-ms-signature)=(?P<s>[^&\s"'#<>]+)`), hint: "="},
	// JSON fields that hold credentials.
	{re: regexp.MustCompile(`(?i)"(?:token|access_token|refresh_token|id_token|password|passwd|secret|client_secret|auth|identitytoken|registrytoken|private_token)"\s*:\s*"(?P<s>(?:[^"\\]|\\.)+)"`), hint: `"`},
	// JSON Web Tokens.
	{re: regexp.MustCompile(`\b(?P<s>eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*)`), hint: "eyj"},
	// GitHub and GitLab token formats.
	{re: regexp.MustCompile(`\b(?P<s>(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,}|glcbt-[A-Za-z0-9_\-]{20,}))`)},
}

// challengeParameter: "Bearer realm=..." is a WWW-Authenticate challenge,
// whose words are parameters (name=value), not a credential. A base64
// credential has "=" only as its trailing padding.
func challengeParameter(s string, start, end int) bool {
	m := s[start:end]
	i := strings.IndexByte(m, '=')
	if i <= 0 || strings.TrimLeft(m[:i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
		return false
	}
	next := start + i + 1
	return next < len(s) && s[next] != '=' && s[next] != ' ' && s[next] != '\t' && s[next] != '\n' && s[next] != '\r'
}

// base64Word is a run of the base64 alphabet long enough to encode a
// user:password pair.
var base64Word = regexp.MustCompile(`[A-Za-z0-9+/_\-]{8,}={0,2}`)

// redactBase64Pairs masks base64 words that decode to printable
// "user:password" text: Basic credentials echoed without their scheme.
func redactBase64Pairs(s string) string {
	return base64Word.ReplaceAllStringFunc(s, func(w string) string {
		if isBase64Pair(w) {
			return Mask
		}
		return w
	})
}

func isBase64Pair(w string) bool {
	trimmed := strings.TrimRight(w, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(trimmed)
		if err != nil || !utf8.Valid(b) {
			continue
		}
		text := string(b)
		i := strings.IndexByte(text, ':')
		if i <= 0 || i == len(text)-1 {
			continue
		}
		printable := true
		for _, r := range text {
			if r < 0x21 || r == 0x7f {
				printable = false
				break
			}
		}
		if printable {
			return true
		}
	}
	return false
}

// Base64Forms are the substrings every base64 encoding of a text holding
// secret contains, whatever precedes it (a "user:" before a password
// shifts the encoding by one or two bytes): per alignment, the characters
// that encode the secret's bytes alone. Forms shorter than 8 characters
// would mask too much and are left out.
func Base64Forms(secret string) []string {
	var forms []string
	b := []byte(secret)
	for shift := range 3 {
		// The secret starts at byte shift of a 3-byte group; keep the
		// groups made of its bytes only.
		start := (3 - shift) % 3
		if start >= len(b) {
			continue
		}
		n := (len(b) - start) / 3 * 3
		if n < 6 {
			continue
		}
		chunk := b[start : start+n]
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			forms = append(forms, enc.EncodeToString(chunk))
		}
	}
	// The whole secret encoded on its own, with its padding.
	if len(b) >= 6 {
		forms = append(forms, base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b))
	}
	return forms
}

// URL drops what may be a credential from a URL for a message: its user
// information (replaced by ***) and its query (an upload state, a SAS, a
// presigned signature, replaced by …). Text that is not a URL is returned
// as it is.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if i := strings.Index(raw, "://"); i >= 0 {
			rest := raw[i+3:]
			if at := strings.IndexByte(rest, '@'); at >= 0 && !strings.Contains(rest[:at], "/") {
				return raw[:i+3] + "***@" + rest[at+1:]
			}
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("***")
	}
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return strings.Replace(u.String(), "%2A%2A%2A@", "***@", 1)
}

// FirstLine is the first line of s, trimmed: a message made of an error or
// a server's answer.
func FirstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}
