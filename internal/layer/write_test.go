package layer

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTarModeRoundTripKeepsSpecialBits(t *testing.T) {
	for _, m := range []fs.FileMode{0o644, 0o755 | fs.ModeSetuid, 0o2755&fs.ModePerm | fs.ModeSetgid, 0o777 | fs.ModeSticky, 0o4711&fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid} {
		require.Equal(t, m, PermFromTar(tarMode(m)), "%v", m)
	}
	require.Equal(t, fs.ModeSetuid|0o755, PermFromTar(0o4755))
}
