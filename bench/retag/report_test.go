package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/hoist-ci/hoist/internal/testrig"
)

func msd(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestMedianAndPercentile(t *testing.T) {
	tests := []struct {
		name   string
		in     []time.Duration
		median time.Duration
		p90    time.Duration
	}{
		{"empty", nil, 0, 0},
		{"one", []time.Duration{5}, 5, 5},
		{"odd, unsorted", []time.Duration{9, 1, 5}, 5, 9},
		{"even averages the middle", []time.Duration{4, 1, 3, 2}, 2, 4},
		{"ten: p90 is the 9th", []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.median, median(tt.in))
			require.Equal(t, tt.p90, percentile(tt.in, 0.9))
		})
	}
}

// TestRequestRows checks the row of the request table each request the
// proxies see is counted in, by testrig.Classify's kind.
func TestRequestRows(t *testing.T) {
	tests := []struct{ method, target, row string }{
		{"GET", "/v2/", "ping `GET /v2/`"},
		{"GET", "/v2", "ping `GET /v2/`"},
		{"GET", "/token?scope=repository:bench/hoist:pull&service=bench-registry", "token"},
		{"HEAD", "/v2/bench/hoist/manifests/t1", "manifest HEAD"},
		{"GET", "/v2/bench/hoist/manifests/sha256:abc", "manifest GET"},
		{"PUT", "/v2/bench/hoist/manifests/t1", "manifest PUT"},
		{"HEAD", "/v2/bench/hoist/blobs/sha256:abc", "blob (any method)"},
		{"POST", "/v2/bench/hoist/blobs/uploads/", "blob (any method)"},
		{"PATCH", "/v2/bench/hoist/blobs/uploads/3f2a-11", "blob (any method)"},
		{"GET", "/v2/bench/hoist/tags/list", "`GET tags-list`"},
		{"GET", "/v2/_catalog", "`GET catalog`"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			k := countKey(tt.method, testrig.Classify(httptest.NewRequest(tt.method, tt.target, nil)))
			var rows []string
			for _, r := range countRows([2]map[string]countRange{{k: {1, 1}}, {}}) {
				if r.match(k) && r.label != "**total**" {
					rows = append(rows, r.label)
				}
			}
			require.Equal(t, []string{tt.row}, rows)
		})
	}
}

func TestBusyAndInFlight(t *testing.T) {
	put := func(start, end float64) record {
		return record{method: "PUT", kind: "manifest", start: msd(start), end: msd(end)}
	}
	get := func(start, end float64) record {
		return record{method: "GET", kind: "manifest", start: msd(start), end: msd(end)}
	}
	tests := []struct {
		name   string
		recs   []record
		busy   time.Duration
		maxPUT int
	}{
		{"none", nil, 0, 0},
		{"serial", []record{get(0, 1), put(2, 4), put(5, 6)}, msd(4), 1},
		{"parallel PUTs", []record{get(0, 1), put(2, 5), put(2, 4), put(3, 6)}, msd(5), 3},
		{"touching intervals do not overlap", []record{put(0, 1), put(1, 2)}, msd(2), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.busy, busy(tt.recs))
			require.Equal(t, tt.maxPUT, maxInFlight(tt.recs, "PUT manifest"))
		})
	}
}

func TestProcessOverheads(t *testing.T) {
	sr := sideRun{
		procs: []span{{start: 0, end: msd(10)}, {start: msd(10), end: msd(20)}},
		recs: []record{
			{start: msd(4), end: msd(5)}, {start: msd(6), end: msd(9)}, // process 1: 4 ms to start, 1 ms tail
			{start: msd(13), end: msd(18)}, // process 2: 3 ms to start, 2 ms tail
		},
	}
	startup, tail := processOverheads(sr)
	require.Equal(t, msd(7), startup)
	require.Equal(t, msd(3), tail)
}

func TestReplaceSection(t *testing.T) {
	section := "## retag\n\nnew\n"
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"empty file gets the header", "", resultsHeader + "\n" + section},
		{"appended when absent", "# Benchmark results\n\n## kaniko\n\nk\n", "# Benchmark results\n\n## kaniko\n\nk\n\n" + section},
		{"replaced at the end", "# B\n\n## retag\n\nold\nolder\n", "# B\n\n" + section},
		{"replaced in the middle, neighbours kept", "# B\n\n## retag\n\nold\n\n## bump\n\nb\n", "# B\n\n" + section + "\n## bump\n\nb\n"},
		{"### subsections belong to the section", "# B\n\n## retag\n\n### x\n\nold\n## bump\nb\n", "# B\n\n" + section + "\n## bump\nb\n"},
		{"a heading that only starts with retag is another section", "# B\n\n## retag-promote\n\np\n", "# B\n\n## retag-promote\n\np\n\n" + section},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, replaceSection(tt.doc, "retag", section))
		})
	}
}

func TestWriteSectionIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	require.NoError(t, writeSection(path, "retag", "## retag\n\none\n"))
	require.NoError(t, writeSection(path, "retag", "## retag\n\ntwo\n"))
	require.NoError(t, writeSection(path, "retag", "## retag\n\ntwo\n"))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, resultsHeader+"\n## retag\n\ntwo\n", string(got))
}

// TestRender compares the section rendered from fixed rounds with
// testdata/section.golden; -update rewrites it.
func TestRender(t *testing.T) {
	mk := func(wall float64, procs int, recs ...record) sideRun {
		sr := sideRun{wall: msd(wall), recs: recs}
		step := wall / float64(procs)
		for i := 0; i < procs; i++ {
			sr.procs = append(sr.procs, span{start: msd(float64(i) * step), end: msd(float64(i+1) * step)})
		}
		return sr
	}
	r := func(method string, kind testrig.Kind, status int, start, end float64) record {
		return record{method: method, kind: kind, status: status, start: msd(start), end: msd(end)}
	}
	hoistRecs := []record{
		r("GET", "ping", 401, 4, 5), r("GET", "token", 200, 5, 6), r("GET", "manifest", 200, 6, 7),
		r("PUT", "manifest", 201, 8, 11), r("PUT", "manifest", 201, 8, 12), r("PUT", "manifest", 201, 8, 12), r("PUT", "manifest", 201, 9, 13),
	}
	var craneRecs []record
	for i := 0; i < 4; i++ {
		o := float64(i) * 15
		craneRecs = append(craneRecs, r("GET", "ping", 401, o+6, o+7), r("GET", "token", 200, o+7, o+8),
			r("GET", "manifest", 200, o+8, o+9), r("GET", "ping", 401, o+10, o+11), r("GET", "token", 200, o+11, o+12), r("PUT", "manifest", 201, o+12, o+14))
	}
	var rounds []round
	for i, w := range []float64{14, 15, 16} {
		rounds = append(rounds, round{hoistFirst: i%2 == 0, sides: [2]sideRun{mk(w, 1, hoistRecs...), mk(60+w, 4, craneRecs...)}})
	}
	m := meta{
		date: "2026-11-23 12:00 UTC", machine: "2 CPUs (nproc), Test CPU, linux/amd64", hoist: "0.1.0 (abc1234), bin/retag",
		crane: "v0.22.1", registry: "docker-registry 2.8.2+ds1", goVer: "go1.26.8", rounds: 3, warmup: 1, tags: 4,
		command: "go run ./bench/retag --write", duration: 42 * time.Second,
	}
	got := render(m, []summary{summarize(scenarioToken, rounds)})
	golden.String(t, filepath.Join("testdata", "section.golden"), got)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			require.Equal(t, 15, c.rounds)
			require.Equal(t, []string{scenarioAnonymous, scenarioToken}, c.scenarios)
		}},
		{name: "scenarios", args: []string{"--scenarios", "htpasswd, anonymous"}, check: func(t *testing.T, c config) {
			require.Equal(t, []string{scenarioHtpasswd, scenarioAnonymous}, c.scenarios)
		}},
		{name: "unknown scenario", args: []string{"--scenarios", "oauth"}, wantErr: `unknown scenario "oauth"`},
		{name: "zero rounds", args: []string{"--rounds", "0"}, wantErr: "need rounds ≥ 1"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "every setting is a flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, os.Stderr)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}
