package gitmeta

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReleaseTags(t *testing.T) {
	tests := []struct {
		tag     string
		aliases bool
		want    []string
	}{
		{"v1.4.2", true, []string{"v1.4.2", "1.4.2", "1.4", "1"}},
		{"1.4.2", true, []string{"1.4.2", "1.4", "1"}},
		{"v1.4.2", false, []string{"v1.4.2"}},
		{"v0.3.1", true, []string{"v0.3.1", "0.3.1", "0.3"}},
		{"v1.5.0-rc.1", true, []string{"v1.5.0-rc.1", "1.5.0-rc.1"}},
		{"v2.0.0+build.7", true, []string{"v2.0.0+build.7", "2.0.0-build.7", "2.0", "2"}},
		{"release-2024", true, []string{"release-2024"}},
		{"v1.4", true, []string{"v1.4"}},
		{"latest", true, []string{"latest"}},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			require.Equal(t, tt.want, ReleaseTags(tt.tag, tt.aliases))
		})
	}
}

func TestIsLatest(t *testing.T) {
	existing := []string{"latest", "1.4.2", "1.4", "1", "v2.0.0-rc.1", "abc1234", "0.9.0"}
	tests := []struct {
		version string
		want    bool
	}{
		{"1.4.2", true},  // re-release of the highest
		{"1.5.0", true},  // newer
		{"1.4.1", false}, // backport: latest must not move backwards
		{"2.0.0-rc.2", false},
		{"v1.10.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			v, ok := ParseVersion(tt.version)
			require.True(t, ok)
			require.Equal(t, tt.want, IsLatest(v, existing))
		})
	}
	v, _ := ParseVersion("0.1.0")
	require.True(t, IsLatest(v, nil), "an empty repository takes latest")
	require.False(t, IsLatest(nil, nil))
}

func TestHeldBack(t *testing.T) {
	existing := []string{"1.4.2", "1.4", "1", "1.3.8", "2.0.0-rc.1", "0.9.3", "latest"}
	tests := []struct {
		version string
		want    []string
	}{
		{"1.3.9", []string{"1"}},        // backport: 1.3 moves, 1 stays on 1.4.2
		{"1.4.1", []string{"1.4", "1"}}, // an older patch moves nothing
		{"1.4.3", nil},                  // forward
		{"1.5.0", nil},                  // forward
		{"0.9.1", []string{"0.9"}},      // no bare 0 alias to hold
		{"2.0.0-rc.2", nil},             // pre-releases have no aliases
		{"1.4.2", nil},                  // a re-release of the highest
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			v, ok := ParseVersion(tt.version)
			require.True(t, ok)
			require.Equal(t, tt.want, HeldBack(v, existing))
		})
	}
}

func TestSanitizeAndValidateTag(t *testing.T) {
	tests := []struct{ in, want string }{
		{"release/1.0", "release-1.0"},
		{"feature/ÜX", "feature--X"},
		{".hidden", "hidden"},
		{"-x", "x"},
		{"v1.2.3+meta", "v1.2.3-meta"},
	}
	for _, tt := range tests {
		got := SanitizeTag(tt.in)
		require.Equal(t, tt.want, got, tt.in)
		require.NoError(t, ValidateTag(got))
	}
	require.Error(t, ValidateTag("a/b"))
	require.Error(t, ValidateTag(""))
	require.Error(t, ValidateTag(".x"))
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a'
	}
	require.Len(t, SanitizeTag(string(long)), 128)
}

func FuzzSanitizeTag(f *testing.F) {
	for _, s := range []string{"v1.2.3", "refs/heads/main", "..", "ü", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := SanitizeTag(s)
		if out != "" {
			require.NoError(t, ValidateTag(out))
		}
		for _, tag := range ReleaseTags(s, true)[1:] {
			require.NoError(t, ValidateTag(tag))
		}
	})
}
