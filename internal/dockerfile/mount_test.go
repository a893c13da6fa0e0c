package dockerfile

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A bind mount of the build context is refused when its source climbs out
// with ../, as COPY ../x is; a stage's or an image's ../ stays inside it.
func TestBindMountSourceAboveTheContextIsRefused(t *testing.T) {
	for _, src := range []string{"../x", "..", "a/../../x", "./../x"} {
		err := run(t, "FROM scratch\nRUN --mount=type=bind,source="+src+",target=/m true\n", Options{})
		require.ErrorContains(t, err, "Dockerfile:2: RUN --mount: type=bind,source="+src+" points above the build context with ../", src)
		require.ErrorContains(t, err, "like COPY, only reads inside the build context")
	}
	for _, src := range []string{"x", "a/../x", "/x", "."} {
		require.NoError(t, run(t, "FROM scratch\nRUN --mount=type=bind,source="+src+",target=/m true\n", Options{}), src)
	}
	require.NoError(t, run(t, "FROM scratch AS s\nFROM scratch\nRUN --mount=type=bind,from=s,source=../x,target=/m true\n", Options{}))
}
