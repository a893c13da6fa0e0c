package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// results holds every round's run per scenario and tool.
type results map[string]map[string][]sample

func (r results) add(scenario, tool string, rn sample) {
	if r[scenario] == nil {
		r[scenario] = map[string][]sample{}
	}
	r[scenario][tool] = append(r[scenario][tool], rn)
}

// stats are the medians (and the fastest time) of one tool's runs.
type stats struct {
	n                                      int
	median, min, inner                     time.Duration
	rss, shm                               int64
	layerUp, layerDown, otherUp, otherDown int64
	requests, blobRequests                 int64
	detail                                 string // the request counts of the median run
}

func summarize(rs []sample) stats {
	if len(rs) == 0 {
		return stats{}
	}
	s := stats{n: len(rs), min: rs[0].d}
	for _, r := range rs {
		s.min = min(s.min, r.d)
	}
	s.median = time.Duration(medianOf(rs, func(r sample) int64 { return int64(r.d) }))
	s.inner = time.Duration(medianOf(rs, func(r sample) int64 { return int64(r.inner) }))
	s.rss = medianOf(rs, func(r sample) int64 { return r.rss })
	s.shm = medianOf(rs, func(r sample) int64 { return r.shm })
	s.layerUp = medianOf(rs, func(r sample) int64 { return r.layerUp })
	s.layerDown = medianOf(rs, func(r sample) int64 { return r.layerDown })
	s.otherUp = medianOf(rs, func(r sample) int64 { return r.otherUp })
	s.otherDown = medianOf(rs, func(r sample) int64 { return r.otherDown })
	s.requests = medianOf(rs, func(r sample) int64 { return int64(r.requests.Total()) })
	s.blobRequests = medianOf(rs, func(r sample) int64 { return int64(r.requests.Blobs()) })
	// The request mix of the run whose duration is the median.
	sorted := append([]sample(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].d < sorted[j].d })
	s.detail = sorted[len(sorted)/2].requests.String()
	return s
}

func medianOf(rs []sample, f func(sample) int64) int64 {
	v := make([]int64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

type report struct {
	cfg       config
	scenarios []scenario
	tools     []tool
	res       results
	sizes     map[string]int64
	elapsed   time.Duration
	date      time.Time
	// loadStart and loadEnd are the 1-minute load averages around the
	// measured rounds (other work on the machine skews every tool).
	loadStart, loadEnd string
	machine            string
}

// loadAverage is the 1-minute load average, "?" when unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func (rep report) stats(scenario, tool string) (stats, bool) {
	rs := rep.res[scenario][tool]
	return summarize(rs), len(rs) > 0
}

// ratio is a tool's median over kaniko's (its `docker run`), and over
// kaniko's executor alone (without the container's start); 0 when either
// tool is missing.
func (rep report) ratio(scenario, tool string) (run, alone float64) {
	h, okh := rep.stats(scenario, tool)
	k, okk := rep.stats(scenario, "kaniko")
	if !okh || !okk || k.median == 0 || k.inner == 0 {
		return 0, 0
	}
	return float64(h.median) / float64(k.median), float64(h.median) / float64(k.inner)
}

func (rep report) markdown() string {
	var b strings.Builder
	b.WriteString("## build-push\n\n<!-- Written by `go run ./bench/build-push --write`; change the program, not this section. -->\n\n")
	b.WriteString("Per round, on one local registry (Debian's docker-registry), each tool through its own counting proxy, every scenario is built by " +
		"**hoist** `build-push --cache --cache-repo <repo>` (isolation `auto`), " +
		"**kaniko** v1.24.0 (built from source; its executor in the rig's Docker engine as its own container with `--network host`, " +
		"`--cache=true --cache-copy-layers=true --cache-repo <repo>`, default snapshot mode: its best case, the peer of the targets), " +
		"**kaniko-default** (the same with kaniko's default `--cache-copy-layers=false`, as most kaniko jobs run: a warm build executes its COPY, which needs the unpacked base) and " +
		"**buildah** 1.28 on the host (`bud --isolation chroot --storage-driver vfs --layers --cache-from <repo> --cache-to <repo>`, " +
		"then `buildah push`, a fresh storage root per build). Every build starts from an empty local state and, when cold, an empty cache repository; " +
		"a warm build reuses the cold build's cache repository from a new process with no local state and pushes a new tag. " +
		"The tools take turns going first. Each image is pulled back and checked every round (the files its RUN and COPY steps wrote).\n\n")
	b.WriteString("| scenario | Dockerfile after `FROM` | context |\n|---|---|---|\n")
	for _, sc := range rep.scenarios {
		steps := []string{}
		for _, line := range strings.Split(strings.TrimSpace(sc.dockerfile), "\n") {
			if strings.HasPrefix(line, "ARG BASE") || strings.HasPrefix(line, "FROM ") {
				continue
			}
			steps = append(steps, "`"+strings.ReplaceAll(line, "|", "\\|")+"`")
		}
		ctx := fmt.Sprintf("%d files", sc.files)
		if size, ok := rep.sizes[sc.id]; ok {
			ctx += fmt.Sprintf(" (%.1f MB)", float64(size)/1e6)
		}
		if sc.warmOf != "" {
			ctx = "as " + sc.warmOf
		}
		fmt.Fprintf(&b, "| %s: %s, `%s` | %s | %s |\n", sc.id, sc.title, sc.base, strings.Join(steps, "<br>"), ctx)
	}
	fmt.Fprintf(&b, "\n| | |\n|---|---|\n| date | %s |\n| machine | %s; load average (1 min) %s at the start, %s at the end |\n| rounds | %d |\n| command | `go run ./bench/build-push --write` (%s) |\n\n",
		rep.date.Format("2006-01-02 15:04 UTC"), rep.machine, rep.loadStart, rep.loadEnd, rep.cfg.rounds, rep.elapsed.Round(time.Second))
	b.WriteString("![median seconds per tool and scenario](../docs/bench/build-push.svg)\n\n")
	b.WriteString("Medians over the rounds. *Layer bytes* are blob bytes of layers (what a manifest names as a layer) through the tool's proxy, " +
		"up (pushed) and down (pulled); *other* are configs and cache metadata. Peak RSS: hoist and buildah, wait4's `ru_maxrss` " +
		"(the largest process of the tool's tree); kaniko, the executor's VmHWM read from /proc while it runs; " +
		"*+ shm* is the peak growth of the host's /dev/shm during the build (files a tool keeps in memory, which no RSS shows: " +
		"hoist unpacks a stage there when the tmpfs has ample room, as on this host; in a container /dev/shm is 64 MiB and it uses the disk, " +
		"which *hoist-disk* (`--scratch-dir` on the same disk as the others' storage) measures). " +
		"kaniko's time is its `docker run` (what a job waits for); *alone* is its executor's own run time (the engine's start and finish times: " +
		"without the container's start, which a hoist job in a container pays too), and the targets are judged against it.\n\n")
	b.WriteString("| scenario | tool | median | min | ×kaniko | ×kaniko alone | layer bytes ↑ | layer bytes ↓ | other ↑ / ↓ | requests (blob) | peak RSS + shm |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range rep.scenarios {
		k, okk := rep.stats(sc.id, "kaniko")
		for _, t := range rep.tools {
			s, ok := rep.stats(sc.id, t.name)
			if !ok {
				continue
			}
			rel, relAlone := "n/a", "n/a"
			if t.name == "kaniko" {
				rel, relAlone = "—", "—"
			} else if t.name == "kaniko-default" && okk && k.median > 0 && k.inner > 0 && s.inner > 0 {
				rel = fmt.Sprintf("%.3f", float64(s.median)/float64(k.median))
				relAlone = fmt.Sprintf("%.3f", float64(s.inner)/float64(k.inner))
			} else if okk && k.median > 0 && k.inner > 0 {
				rel = fmt.Sprintf("%.3f", float64(s.median)/float64(k.median))
				relAlone = fmt.Sprintf("%.3f", float64(s.median)/float64(k.inner))
			}
			median := secs(s.median)
			if s.inner > 0 {
				median += " (alone " + secs(s.inner) + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %d (%d) | %s |\n", sc.id, t.label,
				median, secs(s.min), rel, relAlone, bytesStr(s.layerUp), bytesStr(s.layerDown), bytesStr(s.otherUp), bytesStr(s.otherDown),
				s.requests, s.blobRequests, memStr(s.rss, s.shm))
		}
	}
	b.WriteString("\nTargets (hoist against kaniko, medians; memory: peak RSS plus what the build held in /dev/shm):\n\n")
	for _, sc := range rep.scenarios {
		if sc.target == 0 {
			continue
		}
		for _, t := range rep.tools {
			if !strings.HasPrefix(t.name, "hoist") {
				continue
			}
			r, alone := rep.ratio(sc.id, t.name)
			h, _ := rep.stats(sc.id, t.name)
			if r == 0 {
				fmt.Fprintf(&b, "- %s, %s: n/a (needs kaniko; target ≤ %g × kaniko).\n", sc.id, t.name, sc.target)
				continue
			}
			line := fmt.Sprintf("- %s, %s: **%.3f** × kaniko's executor alone, %.3f × its `docker run` (target ≤ %g", sc.id, t.name, alone, r, sc.target)
			ok := alone <= sc.target
			if sc.zeroLayerBytes {
				moved := h.layerUp + h.layerDown
				line += fmt.Sprintf(" with 0 layer bytes moved; moved %s", bytesStr(moved))
				ok = ok && moved == 0
			}
			line += "): " + met(ok)
			if sc.rssTarget > 0 {
				mem := h.rss + max(h.shm, 0)
				line += fmt.Sprintf("; peak memory **%s** (target ≤ %s): %s", memStr(h.rss, h.shm), rssStr(sc.rssTarget), met(h.rss >= 0 && mem <= sc.rssTarget))
			}
			b.WriteString(line + ".\n")
		}
	}
	b.WriteString("\n<details><summary>Requests per tool (the median-time round)</summary>\n\n| scenario | tool | requests |\n|---|---|---|\n")
	for _, sc := range rep.scenarios {
		for _, t := range rep.tools {
			if s, ok := rep.stats(sc.id, t.name); ok {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", sc.id, t.name, s.detail)
			}
		}
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func secs(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func bytesStr(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// memStr is a peak RSS, plus the /dev/shm growth when there was one.
func memStr(rss, shm int64) string {
	if rss < 0 || shm < 1e6 {
		return rssStr(rss)
	}
	return fmt.Sprintf("%s + %s = %s", rssStr(rss), rssStr(shm), rssStr(rss+shm))
}

func rssStr(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MB", float64(n)/1e6)
}
