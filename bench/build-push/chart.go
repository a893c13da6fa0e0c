package main

import (
	"fmt"
	"html"
	"strings"
)

// Chart geometry (pixels).
const (
	chartWidth  = 980
	labelWidth  = 110 // tool names, left of the bars
	barMax      = 440 // the slowest tool of a scenario
	barHeight   = 18
	barGap      = 6
	groupTitle  = 26
	groupGap    = 14
	chartMargin = 16
)

// toolColors: one colour per tool, the same in every group.
var toolColors = map[string]string{"hoist": "#2f7d32", "hoist-disk": "#7cb87f", "kaniko": "#c0562b", "kaniko-default": "#e39a74", "buildah": "#3b6ea8"}

// chart draws the median seconds per tool for each scenario as
// horizontal bars, each scenario scaled to its slowest tool, with the
// ratio to kaniko next to every other tool's time.
func (rep report) chart() string {
	var body strings.Builder
	y := chartMargin + 30
	for _, sc := range rep.scenarios {
		var longest float64
		for _, t := range rep.tools {
			if s, ok := rep.stats(sc.id, t.name); ok {
				longest = max(longest, s.median.Seconds())
			}
		}
		if longest == 0 {
			continue
		}
		fmt.Fprintf(&body, "  <text x=\"%d\" y=\"%d\" class=\"group\">%s</text>\n", chartMargin, y+16, html.EscapeString(sc.id+": "+sc.title))
		y += groupTitle
		k, okk := rep.stats(sc.id, "kaniko")
		for _, t := range rep.tools {
			s, ok := rep.stats(sc.id, t.name)
			if !ok {
				continue
			}
			sec := s.median.Seconds()
			w := int(float64(barMax)*sec/longest + 0.5)
			w = max(w, 1)
			label := fmt.Sprintf("%.2f s", sec)
			switch {
			case strings.HasPrefix(t.name, "kaniko") && s.inner > 0:
				label += fmt.Sprintf("  (executor alone %.2f s)", s.inner.Seconds())
			case okk && k.median > 0 && k.inner > 0:
				label += fmt.Sprintf("  (%.2f× kaniko alone, %.2f× its docker run", sec/k.inner.Seconds(), sec/k.median.Seconds())
				if strings.HasPrefix(t.name, "hoist") && sc.target > 0 {
					label += fmt.Sprintf("; target ≤ %g×", sc.target)
				}
				label += ")"
			}
			fmt.Fprintf(&body, "  <text x=\"%d\" y=\"%d\" class=\"tool\">%s</text>\n", labelWidth-8, y+barHeight-5, html.EscapeString(t.name))
			fmt.Fprintf(&body, "  <rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>%s %s: %s</title></rect>\n",
				labelWidth, y, w, barHeight, toolColors[t.name], html.EscapeString(t.name), html.EscapeString(sc.id), html.EscapeString(label))
			fmt.Fprintf(&body, "  <text x=\"%d\" y=\"%d\" class=\"value\">%s</text>\n", labelWidth+w+6, y+barHeight-5, html.EscapeString(label))
			y += barHeight + barGap
		}
		y += groupGap
	}
	height := y + chartMargin
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", chartWidth, height, chartWidth, height)
	b.WriteString("  <style>.title{font-size:15px;font-weight:bold}.group{font-size:13px;font-weight:bold}.tool{font-size:12px;text-anchor:end}.value{font-size:12px}.note{font-size:11px;fill:#555}</style>\n")
	fmt.Fprintf(&b, "  <rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", chartWidth, height)
	fmt.Fprintf(&b, "  <text x=\"%d\" y=\"%d\" class=\"title\">build-push: median seconds per build (lower is better)</text>\n", chartMargin, chartMargin+6)
	fmt.Fprintf(&b, "  <text x=\"%d\" y=\"%d\" class=\"note\">%s, %d rounds; each scenario scaled to its slowest tool</text>\n",
		chartMargin, chartMargin+22, rep.date.Format("2006-01-02"), rep.cfg.rounds)
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}
