package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// maxManifest bounds the manifest bodies a proxy keeps to learn which
// blobs are layers.
const maxManifest = 4 << 20

// proxy is a counting reverse proxy in front of the registry, one per
// tool. It counts requests by method and kind, and blob bytes by digest:
// uploaded (bodies of blob uploads, attributed to the digest the upload
// is committed under) and downloaded (responses of blob GETs). It reads
// every manifest that passes through it (pushed or pulled) to tell
// layers from configs.
type proxy struct {
	*httptest.Server
	host    string
	counter *testrig.Counter

	mu       sync.Mutex
	up       map[string]int64 // digest (or "" when never committed) → bytes
	down     map[string]int64
	sessions map[string]int64 // upload session id → bytes not yet committed
	layers   map[string]bool  // digests manifests name as layers
}

func newProxy(target string) *proxy {
	p := &proxy{counter: testrig.NewCounter(nil)}
	p.reset()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.ModifyResponse = func(r *http.Response) error {
		req := r.Request
		switch testrig.Classify(req) {
		case testrig.KindBlob:
			if req.Method == http.MethodGet {
				r.Body = &counting{ReadCloser: r.Body, add: p.adder(p.down, path.Base(req.URL.Path))}
			}
		case testrig.KindManifest:
			if req.Method == http.MethodGet && r.StatusCode == http.StatusOK {
				r.Body = &teeManifest{ReadCloser: r.Body, p: p}
			}
		}
		return nil
	}
	p.Server = httptest.NewServer(p.counter.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch testrig.Classify(r) {
		case testrig.KindBlobUpload:
			if commit := p.upload(r); commit != nil {
				defer commit()
			}
		case testrig.KindManifest:
			if r.Method == http.MethodPut && r.Body != nil {
				body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
				if err == nil {
					p.noteManifest(body)
				}
				r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
			}
		}
		rp.ServeHTTP(w, r)
	})))
	p.host = strings.TrimPrefix(p.URL, "http://")
	return p
}

// upload counts the body of a blob-upload request: a POST with ?digest=
// (monolithic) goes to that digest; PATCH and PUT bodies go to their
// session, which a PUT with ?digest= commits to that digest: upload
// returns that commit, to call once the request is served.
func (p *proxy) upload(r *http.Request) (commit func()) {
	digest := r.URL.Query().Get("digest")
	session := ""
	if r.Method != http.MethodPost {
		session = path.Base(r.URL.Path)
	}
	if r.Body != nil && r.Body != http.NoBody {
		if session != "" {
			r.Body = &counting{ReadCloser: r.Body, add: p.adder(p.sessions, session)}
		} else {
			r.Body = &counting{ReadCloser: r.Body, add: p.adder(p.up, digest)}
		}
	}
	if r.Method == http.MethodPut && digest != "" {
		return func() { p.commit(session, digest) }
	}
	return nil
}

func (p *proxy) commit(session, digest string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.sessions[session]; ok {
		p.up[digest] += n
		delete(p.sessions, session)
	}
}

func (p *proxy) adder(m map[string]int64, key string) func(int) {
	return func(n int) {
		p.mu.Lock()
		m[key] += int64(n)
		p.mu.Unlock()
	}
}

// noteManifest records the layers an image manifest names (an index
// names none).
func (p *proxy) noteManifest(body []byte) {
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if json.Unmarshal(body, &m) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range m.Layers {
		p.layers[l.Digest] = true
	}
}

func (p *proxy) reset() {
	p.counter.Reset()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up, p.down, p.sessions, p.layers = map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]bool{}
}

// traffic is what a proxy saw since its last reset.
type traffic struct {
	layerUp, otherUp, layerDown, otherDown int64
	requests                               testrig.Counts
}

// traffic splits the blob bytes into layers (digests some manifest seen
// names as a layer, plus extra) and the rest (configs, uncommitted
// uploads).
func (p *proxy) traffic(extra map[string]bool) traffic {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := traffic{requests: p.counter.Snapshot()}
	isLayer := func(d string) bool { return p.layers[d] || extra[d] }
	for d, n := range p.up {
		if isLayer(d) {
			t.layerUp += n
		} else {
			t.otherUp += n
		}
	}
	for _, n := range p.sessions {
		t.otherUp += n
	}
	for d, n := range p.down {
		if isLayer(d) {
			t.layerDown += n
		} else {
			t.otherDown += n
		}
	}
	return t
}

type counting struct {
	io.ReadCloser
	add func(int)
}

func (c *counting) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	if n > 0 {
		c.add(n)
	}
	return n, err
}

// teeManifest keeps a copy of a manifest response and records its layers
// when it is closed.
type teeManifest struct {
	io.ReadCloser
	p   *proxy
	buf bytes.Buffer
}

func (t *teeManifest) Read(b []byte) (int, error) {
	n, err := t.ReadCloser.Read(b)
	if t.buf.Len() < maxManifest {
		t.buf.Write(b[:n])
	}
	return n, err
}

func (t *teeManifest) Close() error {
	t.p.noteManifest(t.buf.Bytes())
	return t.ReadCloser.Close()
}
