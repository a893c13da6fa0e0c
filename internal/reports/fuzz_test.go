package reports

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// The seeds of every fuzz target are under testdata/fuzz/<FuzzName>/: the
// sample reports of each flavour and the malformed files.

// FuzzReadJUnit: never panics; an error is a ParseError naming the file;
// what is read survives the merged-report writer.
func FuzzReadJUnit(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		tests, err := ReadJUnit("in.xml", bytes.NewReader(data))
		if err != nil {
			requireParseError(t, err)
			return
		}
		var buf bytes.Buffer
		require.NoError(t, WriteJUnit(&buf, tests))
		back, err := ReadJUnit("out.xml", &buf)
		require.NoError(t, err, "the merged report must read back:\n%s", buf.String())
		a, b := tests.Counts(), back.Counts()
		a.Time, b.Time = 0, 0
		require.Equal(t, a, b)
	})
}

func FuzzReadGoTest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		tests, err := ReadGoTest("in.json", bytes.NewReader(data))
		if err != nil {
			requireParseError(t, err)
			return
		}
		for _, c := range tests.Cases {
			require.Contains(t, []Status{Passed, Failed, Skipped}, c.Status)
			require.Equal(t, c.Status == Failed, len(c.Failures) > 0)
		}
	})
}

func FuzzReadCoverage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cov, err := ReadCoverage("in", bytes.NewReader(data))
		if err != nil {
			requireParseError(t, err)
			return
		}
		if pct, ok := cov.Percent(); ok {
			require.True(t, pct >= 0 && pct <= 100, "percent %v", pct)
		}
		var buf bytes.Buffer
		require.NoError(t, WriteCobertura(&buf, cov, ".", 0))
		back, err := ReadCoverage("out.xml", &buf)
		require.NoError(t, err, "the Cobertura report must read back:\n%s", buf.String())
		v1, c1 := cov.LineCounts()
		v2, c2 := back.LineCounts()
		require.Equal(t, [2]int64{v1, c1}, [2]int64{v2, c2})
	})
}

func FuzzReadLint(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := ReadLint("in", bytes.NewReader(data))
		if err != nil {
			requireParseError(t, err)
			return
		}
		var buf bytes.Buffer
		require.NoError(t, WriteCodeQuality(&buf, fs))
		back, err := ReadCodeQuality("out.json", &buf)
		require.NoError(t, err, "the code quality report must read back:\n%s", buf.String())
		require.Len(t, back.Items, len(fs.Items))
		seen := map[string]bool{}
		for _, x := range back.Items {
			require.False(t, seen[x.Fingerprint], "fingerprints are unique")
			seen[x.Fingerprint] = true
		}
	})
}

func requireParseError(t *testing.T, err error) {
	t.Helper()
	var pe *ParseError
	require.True(t, errors.As(err, &pe), "%T %v", err, err)
	require.Contains(t, err.Error(), pe.File)
}
