package ci

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShortenWords(t *testing.T) {
	long := "/work/" + strings.Repeat("deep/", 1000) + "Dockerfile"
	got := shortenWords("reading the Dockerfile " + long + ": open " + long + ": file name too long (set dockerfile to its path)")
	require.Less(t, len(got), 600)
	require.Contains(t, got, "reading the Dockerfile /work/deep/deep/")
	require.Contains(t, got, "deep/deep/Dockerfile: open /work/")
	require.Contains(t, got, "bytes …]")
	require.Contains(t, got, "file name too long (set dockerfile to its path)")
	short := "an error\twith  spaces\nand lines"
	require.Equal(t, short, shortenWords(short))
	multibyte := strings.Repeat("é", 300)
	require.True(t, strings.HasPrefix(shortenWords(multibyte), strings.Repeat("é", 50)))
}

// The error a run ends with names an overlong path by its start and end;
// a secret in it is masked before it is cut, never half shown.
func TestRunErrorShortensLongPaths(t *testing.T) {
	secret := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9." + strings.Repeat("s", 300)
	h := newHarness(t, localEnv())
	code := Main(context.Background(), testTool(), h.env(), func(context.Context, *Job) (map[string]string, error) {
		return nil, errors.New("reading /x/" + strings.Repeat("a/", 2000) + "file: denied for " + secret)
	})
	require.Equal(t, ExitError, code)
	out := h.stderr.String()
	require.Less(t, len(out), 1000, out)
	require.Contains(t, out, "reading /x/a/a/")
	require.Contains(t, out, "a/file: denied for ***")
	require.NotContains(t, out, "eyJhbGci")
}
