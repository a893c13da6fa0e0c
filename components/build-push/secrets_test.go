package buildpush

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSecrets(t *testing.T) {
	const canary = "canary-value-7c1e"
	file := filepath.Join(t.TempDir(), "npmrc")
	require.NoError(t, os.WriteFile(file, []byte(canary+"-file"), 0o600))
	getenv := func(k string) (string, bool) {
		if k == "TOKEN" {
			return canary + "-env", true
		}
		return "", false
	}
	got, err := ParseSecrets([]string{"plain=" + canary, "token=env:TOKEN", "npmrc=file:" + file, ""}, getenv, os.ReadFile)
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"plain": []byte(canary), "token": []byte(canary + "-env"), "npmrc": []byte(canary + "-file")}, got)

	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{canary}, `line 1: write ID=value`},
		{[]string{"bad id=" + canary}, `line 1: write ID=value`},
		{[]string{"a=env:MISSING"}, `secret "a" comes from the environment variable MISSING, which is not set`},
		{[]string{"a=file:/nonexistent/" + "x"}, `secret "a" comes from the file /nonexistent/x, which cannot be read`},
		{[]string{"a=" + canary, "a=" + canary}, `secret "a" is given twice`},
	} {
		_, err := ParseSecrets(c.lines, getenv, func(string) ([]byte, error) { return nil, errors.New(canary) })
		require.ErrorContains(t, err, c.want)
		require.NotContains(t, err.Error(), canary)
	}
}

func FuzzParseSecrets(f *testing.F) {
	for _, s := range []string{"a=b", "a=env:X", "a=file:/x", "=x", "a", "a=b\nc=d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got, err := ParseSecrets([]string{line}, func(string) (string, bool) { return "v", true }, func(string) ([]byte, error) { return []byte("f"), nil })
		if err != nil {
			_, value, _ := cutAfterID(line)
			if len(value) > 3 && !isSpec(value) {
				require.NotContains(t, err.Error(), value)
			}
			return
		}
		require.LessOrEqual(t, len(got), 1)
	})
}

func cutAfterID(line string) (string, string, bool) {
	for i := range len(line) {
		if line[i] == '=' {
			return line[:i], line[i+1:], true
		}
	}
	return line, "", false
}

func isSpec(v string) bool {
	return len(v) >= 4 && (v[:4] == "env:" || (len(v) >= 5 && v[:5] == "file:"))
}
