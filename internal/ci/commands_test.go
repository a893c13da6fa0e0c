package ci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func platformVars(p Platform) map[string]string {
	switch p {
	case PlatformGitHub:
		return ghEnv()
	case PlatformGitLab:
		return glEnv()
	case PlatformAzure:
		return azEnv()
	}
	return localEnv()
}

// logStream is where a platform's logs go.
func (h *harness) logStream(p Platform) string {
	if p == PlatformLocal {
		return h.stderr.String()
	}
	return h.stdout.String()
}

func TestGroup(t *testing.T) {
	for _, p := range []Platform{PlatformGitHub, PlatformGitLab, PlatformAzure, PlatformLocal} {
		t.Run(string(p), func(t *testing.T) {
			h := newHarness(t, platformVars(p))
			j := mustStart(t, testTool(), h)
			h.stdout.Reset()
			h.stderr.Reset()
			end := j.Group("Pushing tags to reg.example.com/app")
			j.Log.Info("wrote tag", "tag", "1.4.2")
			end()
			end() // closing twice writes nothing more
			end2 := j.Group("Second: 100% done\nreally")
			end2()
			goldenFile(t, "group-"+string(p)+".txt", h.logStream(p))
			if p == PlatformLocal {
				require.Empty(t, h.stdout.String(), "stdout stays machine-readable")
			}
		})
	}
}

func TestAnnotate(t *testing.T) {
	annotations := []Annotation{
		{Level: "error", File: "deploy/app,v2.yaml", Line: 12, EndLine: 14, Col: 3, Title: "Image: not pinned", Message: "use a digest: 100% of images\nmust be pinned"},
		{Level: "warning", File: "Dockerfile", Line: 1, Message: "FROM without a tag"},
		{Level: "notice", Message: "no file, just a note"},
		{Level: "bogus", File: "a.txt", Message: "unknown level is a notice"},
		{Level: "warn", File: "b.txt", Title: "t", Message: "m\r\nn"},
	}
	for _, p := range []Platform{PlatformGitHub, PlatformGitLab, PlatformAzure, PlatformLocal} {
		t.Run(string(p), func(t *testing.T) {
			h := newHarness(t, platformVars(p))
			j := mustStart(t, testTool(), h)
			h.stdout.Reset()
			h.stderr.Reset()
			for _, a := range annotations {
				j.Annotate(a)
			}
			goldenFile(t, "annotations-"+string(p)+".txt", h.logStream(p))
		})
	}
}

func TestLogFormat(t *testing.T) {
	for _, p := range []Platform{PlatformGitHub, PlatformGitLab, PlatformAzure, PlatformLocal} {
		t.Run(string(p), func(t *testing.T) {
			vars := platformVars(p)
			vars["HOIST_DEBUG"] = "true"
			h := newHarness(t, vars)
			j := mustStart(t, testTool(), h)
			h.stdout.Reset()
			h.stderr.Reset()
			log := j.Log.With("repo", "reg.example.com/app")
			log.Info("retagging", "source", "app:abc1234", "tags", []string{"1.4.2", "1.4"})
			log.WithGroup("http").Debug("request", "method", "HEAD", "status", 200)
			log.Warn("tag exists with another digest", "tag", "1.4")
			j.Log.Error("pushing", "error", errors.New("denied: 100% sure\nsecond line"))
			j.Log.Info("registry said:\n::add-mask::x\n  ::stop-commands::tok")
			j.Log.Info("")
			goldenFile(t, "log-"+string(p)+".txt", h.logStream(p))
		})
	}
}

func TestDebugOff(t *testing.T) {
	for _, vars := range []map[string]string{localEnv(), glEnv(), glEnv("HOIST_DEBUG", "false")} {
		h := newHarness(t, vars)
		j := mustStart(t, testTool(), h)
		j.Log.Debug("hidden")
		require.NotContains(t, h.stdout.String()+h.stderr.String(), "hidden")
	}
	h := newHarness(t, glEnv("CI_DEBUG_TRACE", "true"))
	j := mustStart(t, testTool(), h)
	j.Log.Debug("shown")
	require.Contains(t, h.stdout.String(), "debug: shown\n")
}

func TestAddSummary(t *testing.T) {
	t.Run("appends", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "summary.md")
		j := mustStart(t, testTool(), newHarness(t, ghEnv("GITHUB_STEP_SUMMARY", path)))
		require.NoError(t, j.AddSummary("## retag\n"))
		require.NoError(t, j.AddSummary("| tag |\n|---|\n| 1.4.2 |"))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, "## retag\n\n| tag |\n|---|\n| 1.4.2 |\n", string(got))
	})
	t.Run("capped at 1 MiB", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "summary.md")
		require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("a", summaryLimit-4096)+"\n"), 0o644))
		j := mustStart(t, testTool(), newHarness(t, ghEnv("GITHUB_STEP_SUMMARY", path)))
		big := strings.Repeat("| é | row |\n", 2000)
		require.NoError(t, j.AddSummary(big))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Less(t, len(got), summaryLimit)
		require.Contains(t, string(got), "the rest of this summary was cut")
		require.True(t, strings.HasSuffix(string(got), "1 MiB per step.\n\n"), "note ends the file")
		require.NotContains(t, string(got), "| é | ro\n", "cut at a line")
		// Full now: the next summary is refused, the file stays valid.
		require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("a", summaryLimit-10)), 0o644))
		require.ErrorContains(t, j.AddSummary(big), "is full")
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Less(t, fi.Size(), int64(summaryLimit))
	})
	t.Run("no-op elsewhere", func(t *testing.T) {
		for _, vars := range []map[string]string{glEnv(), localEnv(), ghEnv()} {
			h := newHarness(t, vars)
			j := mustStart(t, testTool(), h)
			require.NoError(t, j.AddSummary("# hi"))
			require.NotContains(t, h.stdout.String()+h.stderr.String(), "# hi")
		}
	})
	t.Run("unwritable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing-dir", "summary.md")
		j := mustStart(t, testTool(), newHarness(t, ghEnv("GITHUB_STEP_SUMMARY", path)))
		require.Error(t, j.AddSummary("# hi"))
	})
}

func TestTruncateUTF8(t *testing.T) {
	require.Equal(t, "abc", truncateUTF8("abc", 5))
	require.Equal(t, "a", truncateUTF8("aé", 2)) // é is two bytes
	require.Equal(t, "line one\nline two", truncateUTF8("line one\nline two\nline three", 20))
}
