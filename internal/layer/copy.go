package layer

import "time"

// Owner is a numeric uid:gid.
type Owner struct{ UID, GID int }

// Clamp sets every entry's time to at most epoch.
func Clamp(entries []Entry, epoch time.Time) {
	for i := range entries {
		if entries[i].ModTime.IsZero() || entries[i].ModTime.After(epoch) {
			entries[i].ModTime = epoch
		}
	}
}

// WithoutTimes returns a copy of entries with every time zeroed: the
// content a cache key covers (paths, bytes, modes, ownership, links).
func WithoutTimes(entries []Entry) []Entry {
	out := make([]Entry, len(entries))
	for i, e := range entries {
		e.ModTime = time.Time{}
		out[i] = e
	}
	return out
}
