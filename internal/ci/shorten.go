package ci

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxWord is the longest run of non-space text an error report shows
// whole: a path or a value longer than that (a generated path 4,000
// characters deep, a pasted blob) is shortened to its start and end.
const maxWord = 240

// shortenWords shortens every run of non-space characters longer than
// maxWord to its first and last 100 characters around a note of what was
// left out, so that an error stays readable and names what it is about.
func shortenWords(s string) string {
	if len(s) <= maxWord {
		return s
	}
	var b strings.Builder
	start := -1 // start of the current word, or -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		b.WriteString(shortenWord(s[start:end]))
		start = -1
	}
	for i, r := range s {
		if unicode.IsSpace(r) {
			flush(i)
			b.WriteRune(r)
			continue
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(s))
	return b.String()
}

func shortenWord(w string) string {
	if len(w) <= maxWord {
		return w
	}
	const keep = 100
	head, tail := w[:keep], w[len(w)-keep:]
	for !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	for !utf8.ValidString(tail) {
		tail = tail[1:]
	}
	return fmt.Sprintf("%s[… %d bytes …]%s", head, len(w)-len(head)-len(tail), tail)
}
