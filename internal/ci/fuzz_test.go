package ci

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzSplitList(f *testing.F) {
	for _, s := range []string{"", "a", "a,b", " a , ,b\n", "a\r\nb\n\nc", ",,,", "é, ü\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		items := SplitList(s)
		for _, item := range items {
			require.NotEmpty(t, item)
			require.Equal(t, strings.TrimSpace(item), item)
			require.False(t, strings.ContainsAny(item, ",\n\r"), "%q", item)
		}
		require.Equal(t, items, SplitList(strings.Join(items, ",")), "splitting is idempotent")
		require.Equal(t, items, SplitList(strings.Join(items, "\n")), "commas and newlines are equivalent")
	})
}

// FuzzParseArgs feeds NUL-separated arguments to the flag parser: it never
// panics, accepts only declared inputs, and what it accepts survives a round
// trip through --name=value.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"--source\x00a:1", "--dry-run", "--dry-run\x00false\x00--tags\x00a,b\x00--tags=c",
		"--destination=x", "--sorce\x00x", "extra", "--", "--source", "-h", "--=x", "---source=x",
	} {
		f.Add(s)
	}
	tool := testTool()
	f.Fuzz(func(t *testing.T, s string) {
		var args []string
		if s != "" {
			args = strings.Split(s, "\x00")
		}
		got, err := parseArgs(tool, args)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		var again []string
		for name, values := range got.values {
			in, ok := tool.Input(name)
			require.True(t, ok, "undeclared input %q", name)
			if in.Type != "list" {
				require.Len(t, values, 1)
			}
			for _, v := range values {
				again = append(again, "--"+name+"="+v)
			}
		}
		round, err := parseArgs(tool, again)
		require.NoError(t, err)
		require.Equal(t, len(got.values), len(round.values))
		for name, values := range got.values {
			require.ElementsMatch(t, values, round.values[name])
		}
	})
}
