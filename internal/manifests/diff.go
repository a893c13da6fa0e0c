package manifests

import (
	"bytes"
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines around a change.
const diffContext = 3

// lcsCells bounds the LCS table; a larger changed region is matched line
// by line with a short look-ahead instead (bump's edits change, add or
// remove single lines, which that finds exactly).
const lcsCells = 4_000_000

// lookAhead is how far the line-by-line matcher looks for a line added
// or removed.
const lookAhead = 8

// UnifiedDiff returns a unified diff (3 lines of context) between two
// versions of a file, with a/ and b/ prefixes like git's. Its memory is
// the two files' lines and the diff itself, whatever their size.
func UnifiedDiff(name string, old, new []byte) string {
	a, b := newLines(old), newLines(new)
	blocks := diffBlocks(a, b)
	if len(blocks) == 0 {
		return ""
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- a/%s\n+++ b/%s\n", name, name)
	for i := 0; i < len(blocks); {
		// A hunk takes the blocks whose gaps are at most twice the context.
		j := i + 1
		for j < len(blocks) && blocks[j].a0-blocks[j-1].a1 <= 2*diffContext {
			j++
		}
		first, last := blocks[i], blocks[j-1]
		ctxBefore := min(diffContext, first.a0)
		ctxAfter := min(diffContext, a.n()-last.a1)
		sa, sb := first.a0-ctxBefore, first.b0-ctxBefore
		na := last.a1 + ctxAfter - sa
		nb := last.b1 + ctxAfter - sb
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(sa, na), hunkRange(sb, nb))
		pos := sa
		for _, bl := range blocks[i:j] {
			a.write(&out, ' ', pos, bl.a0)
			a.write(&out, '-', bl.a0, bl.a1)
			b.write(&out, '+', bl.b0, bl.b1)
			pos = bl.a1
		}
		a.write(&out, ' ', pos, last.a1+ctxAfter)
		i = j
	}
	return out.String()
}

// lines are a file's lines as offsets into its bytes (a line keeps its
// newline): 4 bytes a line instead of a copy.
type lines struct {
	b   []byte
	off []int32 // start of each line, then len(b)
}

func newLines(b []byte) lines {
	l := lines{b: b, off: make([]int32, 0, bytes.Count(b, []byte{'\n'})+2)}
	for i := 0; i < len(b); {
		l.off = append(l.off, int32(i))
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			break
		}
		i += nl + 1
	}
	l.off = append(l.off, int32(len(b)))
	return l
}

func (l lines) n() int { return len(l.off) - 1 }

func (l lines) line(i int) []byte { return l.b[l.off[i]:l.off[i+1]] }

func (l lines) eq(i int, m lines, j int) bool { return bytes.Equal(l.line(i), m.line(j)) }

// write writes lines [from, to) with the marker kind.
func (l lines) write(out *strings.Builder, kind byte, from, to int) {
	for i := from; i < to; i++ {
		s := l.line(i)
		out.WriteByte(kind)
		out.Write(s)
		if len(s) == 0 || s[len(s)-1] != '\n' {
			out.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// block replaces a[a0:a1] with b[b0:b1]; the lines between blocks are
// equal.
type block struct{ a0, a1, b0, b1 int }

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffBlocks is the edit script from a to b: the common prefix and suffix
// are skipped, then an LCS on what is left when it is small, else a
// line-by-line match.
func diffBlocks(a, b lines) []block {
	na, nb := a.n(), b.n()
	pre := 0
	for pre < na && pre < nb && a.eq(pre, b, pre) {
		pre++
	}
	suf := 0
	for suf < na-pre && suf < nb-pre && a.eq(na-1-suf, b, nb-1-suf) {
		suf++
	}
	ma, mb := window{a, pre, na - suf}, window{b, pre, nb - suf}
	if ma.n()*mb.n() <= lcsCells {
		return lcsBlocks(ma, mb)
	}
	return greedyBlocks(ma, mb)
}

// window is lines [lo, hi) of a file; blocks use the file's line numbers.
type window struct {
	l      lines
	lo, hi int
}

func (w window) n() int { return w.hi - w.lo }

// addBlock extends the last block when it ends where this one starts.
func addBlock(blocks []block, bl block) []block {
	if n := len(blocks); n > 0 && blocks[n-1].a1 == bl.a0 && blocks[n-1].b1 == bl.b0 {
		blocks[n-1].a1, blocks[n-1].b1 = bl.a1, bl.b1
		return blocks
	}
	return append(blocks, bl)
}

func lcsBlocks(a, b window) []block {
	n, m := a.n(), b.n()
	eq := func(i, j int) bool { return a.l.eq(a.lo+i, b.l, b.lo+j) }
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if eq(i, j) {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var blocks []block
	add := func(a0, a1, b0, b1 int) { blocks = addBlock(blocks, block{a.lo + a0, a.lo + a1, b.lo + b0, b.lo + b1}) }
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case eq(i, j):
			i, j = i+1, j+1
		case t[i+1][j] >= t[i][j+1]:
			add(i, i+1, j, j)
			i++
		default:
			add(i, i, j, j+1)
			j++
		}
	}
	if i < n || j < m {
		add(i, n, j, m)
	}
	return blocks
}

// greedyBlocks matches a and b line by line: equal lines pair up; where
// they differ and the next lines are equal again, the line was changed;
// else the nearest place within lookAhead where the lines run equal again
// (confirmed over a few lines) says how many were added or removed; else
// the line was changed.
func greedyBlocks(a, b window) []block {
	var blocks []block
	i, j := a.lo, b.lo
	for i < a.hi && j < b.hi {
		if a.l.eq(i, b.l, j) {
			i, j = i+1, j+1
			continue
		}
		if i+1 < a.hi && j+1 < b.hi && a.l.eq(i+1, b.l, j+1) {
			blocks = addBlock(blocks, block{i, i + 1, j, j + 1})
			i, j = i+1, j+1
			continue
		}
		added, removed := 0, 0
		for k := 1; k <= lookAhead && added == 0 && removed == 0; k++ {
			if runEqual(a, i, b, j+k) {
				added = k
			} else if runEqual(a, i+k, b, j) {
				removed = k
			}
		}
		switch {
		case added > 0:
			blocks = addBlock(blocks, block{i, i, j, j + added})
			j += added
		case removed > 0:
			blocks = addBlock(blocks, block{i, i + removed, j, j})
			i += removed
		default:
			blocks = addBlock(blocks, block{i, i + 1, j, j + 1})
			i, j = i+1, j+1
		}
	}
	if i < a.hi || j < b.hi {
		blocks = addBlock(blocks, block{i, a.hi, j, b.hi})
	}
	return blocks
}

// runEqual reports whether a and b agree from i and j on for a few lines
// (or up to the end of either).
func runEqual(a window, i int, b window, j int) bool {
	if i >= a.hi || j >= b.hi {
		return false
	}
	for c := 0; c < 3 && i+c < a.hi && j+c < b.hi; c++ {
		if !a.l.eq(i+c, b.l, j+c) {
			return false
		}
	}
	return true
}
