package testrig

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Proxy is a loopback reverse proxy in front of a registry that injects
// faults: every Nth request is answered, alternately, with a 503 or a
// connection reset (SO_LINGER 0), without reaching the registry. Other
// requests are forwarded as streams, bodies intact, with Location headers
// rewritten to the proxy.
type Proxy struct {
	// Host is the proxy's "127.0.0.1:PORT"; Target the registry behind it.
	Host   string
	Target string
	// Every is the fault period (0: never).
	Every int
	// Counter counts every request the proxy received, faulted or not.
	Counter *Counter

	requests atomic.Int64
	faults   atomic.Int64
	resets   atomic.Int64
	rp       *httputil.ReverseProxy
}

// FaultProxy starts a Proxy in front of target (host:port, plain HTTP) for
// the duration of the test. every ≤ 0 forwards everything (a counting proxy).
func FaultProxy(t testing.TB, target string, every int) *Proxy {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: target}
	p := &Proxy{Target: target, Every: every, Counter: NewCounter(nil)}
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

// Faults is the number of faults injected (503s and resets).
func (p *Proxy) Faults() int { return int(p.faults.Load()) }

// Resets is the number of connection resets among Faults.
func (p *Proxy) Resets() int { return int(p.resets.Load()) }

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.requests.Add(1)
	if p.Every > 0 && n%int64(p.Every) == 0 {
		if p.faults.Add(1)%2 == 1 {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
			http.Error(w, "fault injected by testrig.Proxy", http.StatusServiceUnavailable)
			return
		}
		p.resets.Add(1)
		reset(w)
		return
	}
	p.rp.ServeHTTP(w, r)
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
