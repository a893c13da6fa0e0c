package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// record is one request seen by the counting proxy. start and end are
// offsets from the epoch of the side being measured.
type record struct {
	method string
	kind   testrig.Kind
	status int
	start  time.Duration
	end    time.Duration
}

// key is the row a record is counted under: "GET manifest", "PUT manifest"...
func (r record) key() string { return countKey(r.method, r.kind) }

// countKey is a count key "METHOD kind".
func countKey(method string, kind testrig.Kind) string { return method + " " + string(kind) }

// kindOfKey is the kind of a count key ("" for the "401" count).
func kindOfKey(key string) testrig.Kind {
	_, kind, _ := strings.Cut(key, " ")
	return testrig.Kind(kind)
}

// recorder collects the records of one side's run.
type recorder struct {
	mu    sync.Mutex
	epoch time.Time
	recs  []record
}

// reset starts a new measurement whose offsets count from epoch.
func (r *recorder) reset(epoch time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch = epoch
	r.recs = nil
}

// take returns the records since the last reset.
func (r *recorder) take() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.recs
	r.recs = nil
	return out
}

func (r *recorder) add(method string, kind testrig.Kind, status int, start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, record{
		method: method,
		kind:   kind,
		status: status,
		start:  start.Sub(r.epoch),
		end:    end.Sub(r.epoch),
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingProxy is a loopback reverse proxy in front of the registry that
// records every request.
type countingProxy struct {
	host string
	rec  *recorder // nil: nothing recorded (the benchmark's own pushes and checks)
	srv  *http.Server
	done chan error
}

// startProxy listens on a free loopback port and forwards to target
// (host:port, plain HTTP). The Host header is kept, so the Location headers
// the registry writes point back at the proxy. With tokens non-nil the proxy
// answers /token itself and points the registry's challenges there.
func startProxy(target string, tokens http.Handler, record bool) (*countingProxy, error) {
	upstream := &url.URL{Scheme: "http", Host: target}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			if c := resp.Header.Get("WWW-Authenticate"); strings.Contains(c, placeholderRealm) {
				resp.Header.Set("WWW-Authenticate", strings.ReplaceAll(c, placeholderRealm, "http://"+resp.Request.Host+"/token"))
			}
			return nil
		},
		Transport: transport,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the counting proxy: %w", err)
	}
	p := &countingProxy{host: l.Addr().String(), done: make(chan error, 1)}
	if record {
		p.rec = &recorder{epoch: time.Now()}
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start, kind := time.Now(), testrig.Classify(r)
			sw := &statusWriter{ResponseWriter: w}
			if tokens != nil && r.URL.Path == "/token" {
				tokens.ServeHTTP(sw, r)
			} else {
				rp.ServeHTTP(sw, r)
			}
			if p.rec != nil {
				p.rec.add(r.Method, kind, sw.status, start, time.Now())
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { p.done <- p.srv.Serve(l) }()
	return p, nil
}

func (p *countingProxy) close() error {
	err := p.srv.Close()
	if serr := <-p.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("stopping the counting proxy %s: %w", p.host, err)
	}
	return nil
}
