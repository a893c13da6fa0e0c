package testrig

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Kind classifies a registry request.
type Kind string

// Kinds of registry requests.
const (
	KindPing       Kind = "ping"        // /v2/
	KindToken      Kind = "token"       // a token endpoint outside /v2/
	KindManifest   Kind = "manifest"    // /v2/<name>/manifests/<ref>
	KindBlob       Kind = "blob"        // /v2/<name>/blobs/<digest>
	KindBlobUpload Kind = "blob-upload" // /v2/<name>/blobs/uploads/[<id>]
	KindTagsList   Kind = "tags-list"   // /v2/<name>/tags/list
	KindCatalog    Kind = "catalog"     // /v2/_catalog
	KindReferrers  Kind = "referrers"   // /v2/<name>/referrers/<digest>
	KindOther      Kind = "other"
)

// Classify tells which kind of registry request r is, from its path.
func Classify(r *http.Request) Kind {
	p := r.URL.Path
	if p == "/v2/" || p == "/v2" {
		return KindPing
	}
	if !strings.HasPrefix(p, "/v2/") {
		q := r.URL.Query()
		if strings.Contains(strings.ToLower(p), "token") || q.Has("scope") || q.Has("service") {
			return KindToken
		}
		return KindOther
	}
	rest := strings.TrimPrefix(p, "/v2/")
	if rest == "_catalog" {
		return KindCatalog
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	at := func(i int) string { // i-th segment from the end, 1-based
		if n-i < 0 {
			return ""
		}
		return segs[n-i]
	}
	switch {
	case n >= 3 && at(2) == "manifests":
		return KindManifest
	case n >= 4 && at(3) == "blobs" && at(2) == "uploads":
		return KindBlobUpload
	case n >= 3 && at(2) == "blobs" && at(1) == "uploads":
		return KindBlobUpload
	case n >= 3 && at(2) == "blobs":
		return KindBlob
	case n >= 3 && at(2) == "tags" && at(1) == "list":
		return KindTagsList
	case n >= 3 && at(2) == "referrers":
		return KindReferrers
	}
	return KindOther
}

// Key is a request method and kind.
type Key struct {
	Method string
	Kind   Kind
}

// Counts are request counts by method and kind.
type Counts map[Key]int

// Get is the count of one method and kind.
func (c Counts) Get(method string, kind Kind) int { return c[Key{Method: method, Kind: kind}] }

// Kind is the count of one kind, all methods.
func (c Counts) Kind(kind Kind) int {
	n := 0
	for k, v := range c {
		if k.Kind == kind {
			n += v
		}
	}
	return n
}

// Blobs counts every blob request: reads, existence checks and uploads.
func (c Counts) Blobs() int { return c.Kind(KindBlob) + c.Kind(KindBlobUpload) }

// Total counts every request.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the counts sorted, e.g. "GET manifest=1 PUT manifest=4".
func (c Counts) String() string {
	keys := make([]Key, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Method != keys[j].Method {
			return keys[i].Method < keys[j].Method
		}
		return keys[i].Kind < keys[j].Kind
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %s=%d", k.Method, k.Kind, c[k])
	}
	return strings.Join(parts, " ")
}

// Counter counts registry requests by method and kind. As an
// http.RoundTripper it counts the requests that got a response (a failed
// round trip counts in Errors); as a middleware (Wrap) it counts every
// request the server receives.
type Counter struct {
	next http.RoundTripper

	mu     sync.Mutex
	counts Counts
	errors int
}

// NewCounter returns a Counter sending requests through next (nil means
// http.DefaultTransport).
func NewCounter(next http.RoundTripper) *Counter {
	if next == nil {
		next = http.DefaultTransport
	}
	return &Counter{next: next, counts: Counts{}}
}

// RoundTrip implements http.RoundTripper.
func (c *Counter) RoundTrip(req *http.Request) (*http.Response, error) {
	key := Key{Method: req.Method, Kind: Classify(req)}
	resp, err := c.next.RoundTrip(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errors++
	} else {
		c.counts[key]++
	}
	return resp, err
}

// Wrap returns next with every request counted.
func (c *Counter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.add(Key{Method: r.Method, Kind: Classify(r)})
		next.ServeHTTP(w, r)
	})
}

func (c *Counter) add(k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = Counts{}
	}
	c.counts[k]++
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Counts, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Errors is the number of round trips that failed without a response.
func (c *Counter) Errors() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errors
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = Counts{}
	c.errors = 0
}
