package layer

import (
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestContentKey(t *testing.T) {
	file := func(name, content string, mode fs.FileMode, mtime time.Time) Entry {
		return Entry{Name: name, Mode: mode, Size: int64(len(content)), ModTime: mtime,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
	}
	t0, t1 := time.Unix(1, 0), time.Unix(2_000_000_000, 0)
	base := []Entry{{Name: "app", Mode: fs.ModeDir | 0o755}, file("app/a.txt", "alpha", 0o644, t0), file("app/b.txt", "beta", 0o600, t0),
		{Name: "app/link", Mode: fs.ModeSymlink | 0o777, Linkname: "a.txt"}}
	key := func(es []Entry) string {
		k, err := ContentKey(es)
		require.NoError(t, err)
		return k.String()
	}
	want := key(base)
	require.Equal(t, want, key(base), "the same sources give the same key")

	retimed := append([]Entry(nil), base...)
	retimed[1] = file("app/a.txt", "alpha", 0o644, t1)
	require.Equal(t, want, key(retimed), "times are not part of the key (a fresh checkout has new ones)")

	for name, change := range map[string]func([]Entry){
		"content":     func(es []Entry) { es[1] = file("app/a.txt", "alphA", 0o644, t0) },
		"mode":        func(es []Entry) { es[2].Mode = 0o644 },
		"owner":       func(es []Entry) { es[2].UID = 1000 },
		"name":        func(es []Entry) { es[1].Name = "app/c.txt" },
		"link target": func(es []Entry) { es[3].Linkname = "b.txt" },
		"xattr":       func(es []Entry) { es[1].Xattrs = map[string]string{"user.x": "1"} },
		// Moving bytes between neighbouring names must not collide.
		"boundary": func(es []Entry) { es[1].Name, es[3].Linkname = "app/a.txt"+"a", ".txt" },
	} {
		es := append([]Entry(nil), base...)
		change(es)
		require.NotEqual(t, want, key(es), name)
	}

	short := append([]Entry(nil), base...)
	short[1].Size = 99
	_, err := ContentKey(short)
	require.ErrorContains(t, err, "app/a.txt: 5 bytes where 99 were listed")
}
