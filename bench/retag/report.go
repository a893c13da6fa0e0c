package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// target is the goal: hoist at most half of crane's wall time.
const target = 0.5

// meta describes the run.
type meta struct {
	date     string
	machine  string
	hoist    string
	crane    string
	registry string
	goVer    string
	rounds   int
	warmup   int
	tags     int
	command  string
	duration time.Duration
}

// countRange is how often one kind of request was seen per round.
type countRange struct{ min, max int }

// summary condenses the rounds of one scenario.
type summary struct {
	scenario string
	rounds   int
	procs    [2]int
	median   [2]time.Duration
	p90      [2]time.Duration
	min      [2]time.Duration
	// ratio is the median over rounds of hoist/crane (paired per round);
	// ratioOfMedians is median(hoist)/median(crane).
	ratio          float64
	ratioOfMedians float64
	counts         [2]map[string]countRange
	// Where the time goes, medians per round.
	startup [2]time.Duration // process start to its first request, summed over processes
	inside  [2]time.Duration // time with at least one request in flight
	tail    [2]time.Duration // last response to process exit, summed over processes
	maxPUT  [2]int           // most manifest PUTs in flight at once
}

func summarize(scenario string, rounds []round) summary {
	s := summary{scenario: scenario, rounds: len(rounds)}
	var ratios []float64
	var walls, startups, insides, tails [2][]time.Duration
	var counts [2][]map[string]int
	for _, r := range rounds {
		ratios = append(ratios, float64(r.sides[hoist].wall)/float64(r.sides[crane].wall))
		for _, sd := range []side{hoist, crane} {
			sr := r.sides[sd]
			s.procs[sd] = len(sr.procs)
			walls[sd] = append(walls[sd], sr.wall)
			st, tl := processOverheads(sr)
			startups[sd] = append(startups[sd], st)
			tails[sd] = append(tails[sd], tl)
			insides[sd] = append(insides[sd], busy(sr.recs))
			s.maxPUT[sd] = max(s.maxPUT[sd], maxInFlight(sr.recs, countKey("PUT", testrig.KindManifest)))
			counts[sd] = append(counts[sd], countKeys(sr.recs))
		}
	}
	for _, sd := range []side{hoist, crane} {
		s.median[sd] = median(walls[sd])
		s.p90[sd] = percentile(walls[sd], 0.9)
		s.min[sd] = slices.Min(walls[sd])
		s.startup[sd] = median(startups[sd])
		s.inside[sd] = median(insides[sd])
		s.tail[sd] = median(tails[sd])
		s.counts[sd] = ranges(counts[sd])
	}
	s.ratio = median(ratios)
	s.ratioOfMedians = float64(s.median[hoist]) / float64(s.median[crane])
	return s
}

// countKeys counts records by "METHOD kind", plus "401" for challenges.
func countKeys(recs []record) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[r.key()]++
		if r.status == 401 {
			m["401"]++
		}
	}
	return m
}

// ranges turns per-round counts into min–max per key (absent = 0).
func ranges(perRound []map[string]int) map[string]countRange {
	keys := map[string]bool{}
	for _, m := range perRound {
		for k := range m {
			keys[k] = true
		}
	}
	out := map[string]countRange{}
	for k := range keys {
		cr := countRange{min: math.MaxInt}
		for _, m := range perRound {
			cr.min = min(cr.min, m[k])
			cr.max = max(cr.max, m[k])
		}
		out[k] = cr
	}
	return out
}

// processOverheads attributes requests to the process running when they
// started and sums, over processes, the time from start to first request
// and from last response to exit.
func processOverheads(sr sideRun) (startup, tail time.Duration) {
	for _, p := range sr.procs {
		var firstStart, lastEnd time.Duration
		seen := false
		for _, r := range sr.recs {
			if r.start < p.start || r.start > p.end {
				continue
			}
			if !seen || r.start < firstStart {
				firstStart = r.start
			}
			if !seen || r.end > lastEnd {
				lastEnd = r.end
			}
			seen = true
		}
		if !seen {
			startup += p.end - p.start
			continue
		}
		startup += firstStart - p.start
		tail += max(0, p.end-lastEnd)
	}
	return startup, tail
}

// busy is the length of the union of the requests' intervals.
func busy(recs []record) time.Duration {
	iv := make([]record, len(recs))
	copy(iv, recs)
	sort.Slice(iv, func(i, j int) bool { return iv[i].start < iv[j].start })
	var total, curStart, curEnd time.Duration
	open := false
	for _, r := range iv {
		if open && r.start <= curEnd {
			curEnd = max(curEnd, r.end)
			continue
		}
		if open {
			total += curEnd - curStart
		}
		curStart, curEnd, open = r.start, r.end, true
	}
	if open {
		total += curEnd - curStart
	}
	return total
}

// maxInFlight is the most requests of key overlapping at one instant.
func maxInFlight(recs []record, key string) int {
	type edge struct {
		at    time.Duration
		delta int
	}
	var edges []edge
	for _, r := range recs {
		if r.key() == key {
			edges = append(edges, edge{r.start, 1}, edge{r.end, -1})
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta // an end before a start at the same instant
	})
	cur, best := 0, 0
	for _, e := range edges {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

// median of the values (the mean of the middle two for an even count), 0
// for none.
func median[T time.Duration | float64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank percentile (p in (0,1]).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.1f ms", ms(d)) }

func (c countRange) String() string {
	if c.min == c.max {
		return fmt.Sprint(c.min)
	}
	return fmt.Sprintf("%d–%d", c.min, c.max)
}

// countRow is one line of the request table: label and the keys it sums.
type countRow struct {
	label string
	match func(key string) bool
}

func countRows(sums [2]map[string]countRange) []countRow {
	rows := []countRow{
		{"ping `GET /v2/`", func(k string) bool {
			return k == countKey("GET", testrig.KindPing) || k == countKey("HEAD", testrig.KindPing)
		}},
		{"token", func(k string) bool { return kindOfKey(k) == testrig.KindToken }},
		{"manifest HEAD", func(k string) bool { return k == countKey("HEAD", testrig.KindManifest) }},
		{"manifest GET", func(k string) bool { return k == countKey("GET", testrig.KindManifest) }},
		{"manifest PUT", func(k string) bool { return k == countKey("PUT", testrig.KindManifest) }},
		{"blob (any method)", func(k string) bool {
			return kindOfKey(k) == testrig.KindBlob || kindOfKey(k) == testrig.KindBlobUpload
		}},
	}
	seen := map[string]bool{"401": true}
	for _, m := range sums {
		for k := range m {
			for _, r := range rows[:6] {
				if r.match(k) {
					seen[k] = true
				}
			}
		}
	}
	var extra []string
	for _, m := range sums {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				extra = append(extra, k)
			}
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		rows = append(rows, countRow{"`" + k + "`", func(key string) bool { return key == k }})
	}
	rows = append(rows,
		countRow{"**total**", func(k string) bool { return k != "401" }},
		countRow{"of which answered 401", func(k string) bool { return k == "401" }},
	)
	return rows
}

// sumRange adds the ranges of the matching keys.
func sumRange(m map[string]countRange, match func(string) bool) countRange {
	var c countRange
	for k, r := range m {
		if match(k) {
			c.min += r.min
			c.max += r.max
		}
	}
	return c
}

func verdict(ratio float64) string {
	if ratio <= target {
		return "met"
	}
	return "NOT met"
}

// render writes the "## retag" section.
func render(m meta, sums []summary) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## retag\n\n")
	w("<!-- Written by `go run ./bench/retag --write` (make bench); change the program, not this section. -->\n\n")
	w("Per round, on one local registry: a fresh random image (3 layers) is pushed as `bench/hoist:<sha>` and `bench/crane:<sha>`; ")
	w("**hoist** runs one process `retag --source HOST/bench/hoist:<sha> --tags t1,…,t%d --semver-aliases false --latest false --insecure-registries HOST`; ", m.tags)
	w("**crane** runs %d × `crane tag --insecure HOST/bench/crane:<sha> tN`, one after the other, as a pipeline script does. ", m.tags)
	w("Who goes first alternates per round. After each tool, every tag is checked on the registry to resolve to the source digest. ")
	w("Each tool reaches the registry through its own counting loopback reverse proxy (which also serves the token endpoint in the token scenario); the benchmark's own pushes and checks go through a third, uncounted one. ")
	w("Wall time is from the first process start to the last exit. Target: hoist ≤ %.1f × crane (median of the per-round ratios).\n\n", target)

	w("| | |\n|---|---|\n")
	w("| date | %s |\n", m.date)
	w("| machine | %s |\n", m.machine)
	w("| hoist | %s |\n", m.hoist)
	w("| crane | %s |\n", m.crane)
	w("| registry | %s, filesystem storage, 127.0.0.1 |\n", m.registry)
	w("| go | %s |\n", m.goVer)
	w("| rounds | %d measured per scenario, after %d warm-up |\n", m.rounds, m.warmup)
	w("| command | `%s` (%.0f s) |\n\n", m.command, m.duration.Seconds())

	for _, s := range sums {
		w("### %s\n\n", scenarioTitle(s.scenario))
		w("| tool | processes | median | p90 | min |\n|---|---:|---:|---:|---:|\n")
		w("| hoist `retag` | %d | %s | %s | %s |\n", s.procs[hoist], fmtMS(s.median[hoist]), fmtMS(s.p90[hoist]), fmtMS(s.min[hoist]))
		w("| `crane tag` | %d | %s | %s | %s |\n\n", s.procs[crane], fmtMS(s.median[crane]), fmtMS(s.p90[crane]), fmtMS(s.min[crane]))
		w("Median ratio hoist/crane: **%.3f** (ratio of medians %.3f, %d rounds). Target ≤ %.1f: **%s**.\n\n",
			s.ratio, s.ratioOfMedians, s.rounds, target, verdict(s.ratio))
		w("Requests per round:\n\n| request | hoist | crane |\n|---|---:|---:|\n")
		for _, r := range countRows(s.counts) {
			w("| %s | %s | %s |\n", r.label, sumRange(s.counts[hoist], r.match), sumRange(s.counts[crane], r.match))
		}
		w("\nWhere the time goes (medians per round):\n\n| | hoist | crane |\n|---|---:|---:|\n")
		w("| process start → first request (sum over processes) | %s | %s |\n", fmtMS(s.startup[hoist]), fmtMS(s.startup[crane]))
		w("| some request in flight | %s | %s |\n", fmtMS(s.inside[hoist]), fmtMS(s.inside[crane]))
		w("| last response → exit (sum over processes) | %s | %s |\n", fmtMS(s.tail[hoist]), fmtMS(s.tail[crane]))
		w("| manifest PUTs in flight at once (max) | %d | %d |\n\n", s.maxPUT[hoist], s.maxPUT[crane])
	}
	return b.String()
}

func scenarioTitle(s string) string {
	switch s {
	case scenarioAnonymous:
		return "Registry without auth (the issue's workload)"
	case scenarioToken:
		return "Registry with token auth (Bearer tokens from a token server, as Docker Hub, GHCR, GitLab, Harbor; credentials in DOCKER_CONFIG)"
	case scenarioHtpasswd:
		return "Registry with htpasswd auth (HTTP Basic, bcrypt cost 5 checked on every request; credentials in DOCKER_CONFIG)"
	}
	return s
}

// traceText lists one side's processes and requests.
func traceText(sr sideRun) string {
	var b strings.Builder
	for i, p := range sr.procs {
		fmt.Fprintf(&b, "  process %d: %8.1f → %8.1f ms\n", i+1, ms(p.start), ms(p.end))
	}
	recs := slices.Clone(sr.recs)
	sort.Slice(recs, func(i, j int) bool { return recs[i].start < recs[j].start })
	for _, r := range recs {
		fmt.Fprintf(&b, "  %8.1f → %8.1f ms  %-14s %d\n", ms(r.start), ms(r.end), r.key(), r.status)
	}
	return b.String()
}

// resultsHeader starts a new RESULTS.md.
const resultsHeader = "# Benchmark results\n\nEach section is written by its benchmark program; see [README.md](README.md) for how to run them.\n"

// replaceSection replaces the "## heading" section of doc (up to the next
// "## " line) with section, or appends section when doc has none.
func replaceSection(doc, heading, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	if strings.TrimSpace(doc) == "" {
		return resultsHeader + "\n" + section
	}
	lines := strings.SplitAfter(doc, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimRight(l, "\r\n") == "## "+heading {
			start = i
			break
		}
	}
	if start < 0 {
		return strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "## ") {
			end = i
			break
		}
	}
	before := strings.Join(lines[:start], "")
	after := strings.Join(lines[end:], "")
	if after != "" {
		section += "\n"
	}
	return before + section + after
}

// writeSection replaces the section in the file at path (created if absent).
func writeSection(path, heading, section string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(replaceSection(string(data), heading, section)), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
