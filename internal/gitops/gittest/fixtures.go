package gittest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// Exchange is one recorded API request and its response.
type Exchange struct {
	Method string `json:"method"`
	// Path is the escaped request path (GitLab project paths are %2F-encoded).
	Path string `json:"path"`
	// Query lists parameters the request must carry (others are allowed).
	Query map[string]string `json:"query,omitempty"`
	// Body lists JSON fields the request body must carry, with their values.
	Body   map[string]any  `json:"body,omitempty"`
	Status int             `json:"status"`
	Reply  json.RawMessage `json:"response"`
}

// Server is a loopback HTTP server that replays recorded API exchanges (under
// /api/) in order and, elsewhere, serves the bare repositories of a directory over
// git's smart HTTP protocol (git http-backend), push enabled, behind basic
// auth with a token.
type Server struct {
	URL string
	t   testing.TB
	mu  sync.Mutex
	// Script is the exchanges still expected, in order.
	script []Exchange
	// Header is the API auth header expected on every API request.
	header, want string
	errs         []string
}

// NewServer starts the server. apiHeader/apiValue is the header every API
// request must carry (Authorization: Bearer t, PRIVATE-TOKEN: t); gitToken
// is the password git must send.
func NewServer(t testing.TB, gitRoot, fixtureFile, apiHeader, apiValue, gitToken string) *Server {
	t.Helper()
	RequireGit(t)
	var script []Exchange
	if fixtureFile != "" {
		b, err := os.ReadFile(fixtureFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &script); err != nil {
			t.Fatalf("%s: %v", fixtureFile, err)
		}
	}
	backend := execPath(t, "git-http-backend")
	s := &Server{t: t, script: script, header: apiHeader, want: apiValue}
	gitH := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + gitRoot, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			s.serveAPI(w, r)
			return
		}
		if _, pass, ok := r.BasicAuth(); !ok || pass != gitToken {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		gitH.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func execPath(t testing.TB, name string) string {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), name)
}

func (s *Server) fail(format string, a ...any) {
	s.errs = append(s.errs, fmt.Sprintf(format, a...))
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := r.Method + " " + r.URL.EscapedPath()
	if len(s.script) == 0 {
		s.fail("unexpected request %s (script exhausted)", got)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	ex := s.script[0]
	s.script = s.script[1:]
	if want := ex.Method + " " + ex.Path; want != got {
		s.fail("request %s, want %s", got, want)
	}
	if r.Header.Get(s.header) != s.want {
		s.fail("%s: header %s missing or wrong", got, s.header)
	}
	q := r.URL.Query()
	for k, v := range ex.Query {
		if q.Get(k) != v {
			s.fail("%s: query %s=%q, want %q", got, k, q.Get(k), v)
		}
	}
	if len(ex.Body) > 0 {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			var list []any
			if json.Unmarshal(b, &list) == nil {
				body = map[string]any{"": list}
			} else {
				s.fail("%s: body is not JSON: %s", got, b)
			}
		}
		for k, v := range ex.Body {
			if !reflect.DeepEqual(body[k], v) {
				s.fail("%s: body %s=%v, want %v", got, k, body[k], v)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ex.Status)
	_, _ = w.Write(ex.Reply)
}

// Check fails the test on any mismatch, or when exchanges were not made.
func (s *Server) Check() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.errs {
		s.t.Error(e)
	}
	for _, ex := range s.script {
		s.t.Errorf("expected request not made: %s %s", ex.Method, ex.Path)
	}
}
