package testrig

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is a kind of fault the proxy injects.
type Fault string

// Faults the proxy injects.
const (
	// Fault503 answers 503 without reaching the registry.
	Fault503 Fault = "503"
	// Fault429 answers 429 with a Retry-After header without reaching the
	// registry.
	Fault429 Fault = "429+Retry-After"
	// FaultResetBeforeHeaders resets the connection (RST) without reaching
	// the registry.
	FaultResetBeforeHeaders Fault = "reset-before-headers"
	// FaultResetMidBody forwards the request and resets the connection
	// halfway through the response body. A response without a body (HEAD,
	// PUT, POST, PATCH answers) is reset after the registry acted and before
	// its headers reach the client: counted as FaultResetAfterUpstream.
	FaultResetMidBody Fault = "reset-mid-body"
	// FaultResetAfterUpstream is FaultResetMidBody drawn for a response
	// that has no body.
	FaultResetAfterUpstream Fault = "reset-after-upstream"
)

// AllFaults are the faults a random proxy draws from by default.
var AllFaults = []Fault{Fault503, Fault429, FaultResetBeforeHeaders, FaultResetMidBody}

// Proxy is a loopback reverse proxy in front of a registry that injects
// faults: either every Nth request (FaultProxy: alternately a 503 and a
// connection reset, without reaching the registry) or a random share of
// requests (RandomFaultProxy: any of AllFaults). Other requests are
// forwarded as streams, bodies intact, with Location headers rewritten to
// the proxy.
type Proxy struct {
	// Host is the proxy's "127.0.0.1:PORT"; Target the registry behind it.
	Host   string
	Target string
	// Every is the fault period (0: never) of a FaultProxy.
	Every int
	// Counter counts every request the proxy received, faulted or not.
	Counter *Counter

	random   *FaultOptions
	mu       sync.Mutex
	rng      *rand.Rand
	byKind   map[Fault]int
	requests atomic.Int64
	faults   atomic.Int64
	resets   atomic.Int64
	rp       *httputil.ReverseProxy
}

// FaultOptions configure RandomFaultProxy.
type FaultOptions struct {
	// Rate is the share of requests that get a fault (0.1: 10%).
	Rate float64
	// Seed seeds the draw (0: a random seed, logged).
	Seed uint64
	// Kinds are the faults drawn from, uniformly (default AllFaults).
	Kinds []Fault
	// RetryAfter is the Retry-After of a 429 (default 1s; whole seconds).
	RetryAfter time.Duration
}

// FaultProxy starts a Proxy in front of target (host:port, plain HTTP) for
// the duration of the test. every ≤ 0 forwards everything (a counting proxy).
func FaultProxy(t testing.TB, target string, every int) *Proxy {
	t.Helper()
	return startProxy(t, target, every, nil)
}

// RandomFaultProxy starts a Proxy in front of target that gives a random
// share (opts.Rate) of requests one of opts.Kinds. The seed is logged so a
// failing run can be replayed (request order permitting).
func RandomFaultProxy(t testing.TB, target string, opts FaultOptions) *Proxy {
	t.Helper()
	if len(opts.Kinds) == 0 {
		opts.Kinds = AllFaults
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64()
	}
	t.Logf("fault proxy in front of %s: %.0f%% faults (%v), seed %d", target, opts.Rate*100, opts.Kinds, opts.Seed)
	return startProxy(t, target, 0, &opts)
}

func startProxy(t testing.TB, target string, every int, random *FaultOptions) *Proxy {
	u := &url.URL{Scheme: "http", Host: target}
	p := &Proxy{Target: target, Every: every, Counter: NewCounter(nil), random: random, byKind: map[Fault]int{}}
	if random != nil {
		p.rng = rand.New(rand.NewPCG(random.Seed, random.Seed^0x9e3779b97f4a7c15))
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, DisableCompression: true}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport:     tr,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				if lu, err := url.Parse(loc); err == nil && lu.Host == target {
					lu.Host = p.Host
					resp.Header.Set("Location", lu.String())
				}
			}
			return nil
		},
	}
	srv := httptest.NewServer(p.Counter.Wrap(p))
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// Requests is the number of requests received.
func (p *Proxy) Requests() int { return int(p.requests.Load()) }

// Faults is the number of faults injected.
func (p *Proxy) Faults() int { return int(p.faults.Load()) }

// Resets is the number of connection resets among Faults.
func (p *Proxy) Resets() int { return int(p.resets.Load()) }

// FaultCounts are the faults injected so far, by kind.
func (p *Proxy) FaultCounts() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Fault]int, len(p.byKind))
	for k, v := range p.byKind {
		out[k] = v
	}
	return out
}

// Report is one line: requests, faults by kind.
func (p *Proxy) Report() string {
	counts := p.FaultCounts()
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[Fault(k)]))
	}
	return fmt.Sprintf("%d requests, %d faults (%s)", p.Requests(), p.Faults(), strings.Join(parts, " "))
}

// draw decides the fault of one request ("" for none).
func (p *Proxy) draw(n int64) Fault {
	switch {
	case p.random != nil:
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.rng.Float64() >= p.random.Rate {
			return ""
		}
		return p.random.Kinds[p.rng.IntN(len(p.random.Kinds))]
	case p.Every > 0 && n%int64(p.Every) == 0:
		if (p.faults.Load()+1)%2 == 1 {
			return Fault503
		}
		return FaultResetBeforeHeaders
	}
	return ""
}

func (p *Proxy) count(f Fault) {
	p.faults.Add(1)
	if f != Fault503 && f != Fault429 {
		p.resets.Add(1)
	}
	p.mu.Lock()
	p.byKind[f]++
	p.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.requests.Add(1)
	switch f := p.draw(n); f {
	case "":
		p.rp.ServeHTTP(w, r)
	case Fault503, Fault429:
		p.count(f)
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		if f == Fault429 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(p.random.RetryAfter/time.Second))))
			http.Error(w, "fault injected by testrig.Proxy", http.StatusTooManyRequests)
			return
		}
		http.Error(w, "fault injected by testrig.Proxy", http.StatusServiceUnavailable)
	case FaultResetBeforeHeaders:
		p.count(f)
		reset(w)
	case FaultResetMidBody:
		// An answer whose body the registry leaves empty without saying so
		// (no Content-Length, no write) passes uncut and is not counted.
		p.rp.ServeHTTP(&cutWriter{ResponseWriter: w, head: r.Method == http.MethodHead, count: p.count}, r)
	}
}

// errCut ends a response the proxy cut.
var errCut = errors.New("response cut by testrig.Proxy")

// cutWriter passes half of a response body through, then resets the
// connection; a response without a body is reset before its headers.
type cutWriter struct {
	http.ResponseWriter
	head   bool
	status int
	limit  int64 // body bytes to let through; -1: half of the first write
	n      int64
	cut    Fault
	count  func(Fault) // called before the reset
}

func (c *cutWriter) WriteHeader(status int) {
	if c.status != 0 {
		return
	}
	c.status = status
	length, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64)
	switch {
	case c.head || status == http.StatusNoContent || status == http.StatusNotModified || (err == nil && length == 0):
		c.cut = FaultResetAfterUpstream
		c.count(c.cut)
		reset(c.ResponseWriter)
		return
	case err == nil:
		c.limit = max(1, length/2)
	default:
		c.limit = -1
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.cut != "" {
		return 0, errCut
	}
	limit := c.limit
	if limit < 0 {
		limit = max(1, int64(len(b))/2)
	}
	if c.n+int64(len(b)) < limit {
		c.n += int64(len(b))
		return c.ResponseWriter.Write(b)
	}
	k := limit - c.n
	w, _ := c.ResponseWriter.Write(b[:k])
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	c.cut = FaultResetMidBody
	c.count(c.cut)
	reset(c.ResponseWriter)
	return w, errCut
}

// Flush lets the reverse proxy stream through the cutWriter.
func (c *cutWriter) Flush() {
	if c.cut != "" {
		return
	}
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// reset closes the client connection with an RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
