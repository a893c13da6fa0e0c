package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUserNamespaceRefusal names each kernel setting that forbids
// unprivileged user namespaces, read from /proc/sys.
func TestUserNamespaceRefusal(t *testing.T) {
	for _, c := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"user/max_user_namespaces": "0\n"}, "user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)"},
		{map[string]string{"user/max_user_namespaces": "15000\n", "kernel/unprivileged_userns_clone": "0\n"}, "kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1)"},
		{map[string]string{"kernel/apparmor_restrict_unprivileged_userns": "1\n"}, "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1"},
	} {
		dir := t.TempDir()
		for p, v := range c.files {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(v), 0o644))
		}
		got := userNamespaceRefusal(dir)
		require.Contains(t, got, "; the kernel forbids it here: ")
		require.Contains(t, got, c.want)
	}
}

func TestSubordinateIDs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	require.NoError(t, os.WriteFile(f, []byte("alice:100000:65536\n# comment\nnobody:1879048192:65536\n1000:300000:10\nbad:x:1\nnobody:5:0\n"), 0o644))
	require.Equal(t, [][2]int{{1879048192, 65536}}, subordinateIDs(f, "nobody", 65534))
	require.Equal(t, [][2]int{{100000, 65536}, {300000, 10}}, subordinateIDs(f, "alice", 1000), "by name and by id")
	require.Empty(t, subordinateIDs(f, "bob", 1001))
	require.Empty(t, subordinateIDs(filepath.Join(t.TempDir(), "none"), "nobody", 65534))
}

func TestIdentityMap(t *testing.T) {
	f := filepath.Join(t.TempDir(), "uid_map")
	require.NoError(t, os.WriteFile(f, []byte("         0       1000          1\n         1  100000      65536\n"), 0o644))
	m, err := identityMap(f)
	require.NoError(t, err)
	require.Len(t, m, 2)
	require.True(t, mapped(m, 0))
	require.True(t, mapped(m, 65536))
	require.False(t, mapped(m, 65537))
	require.Equal(t, 1, m[1].ContainerID)
	require.Equal(t, 1, m[1].HostID, "each id of this namespace onto itself")
}
