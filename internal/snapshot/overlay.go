package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrOverlayUnavailable is returned by Detect when overlayfs cannot be
// mounted here; the index method is used instead.
var ErrOverlayUnavailable = errors.New("overlayfs cannot be mounted here")

// OverlayUsable reports whether an overlay filesystem can be mounted in
// scratch (a directory on a filesystem that may hold an upper directory):
// it mounts and unmounts a throwaway overlay. A nil error means an
// overlay method could capture diffs as upper directories.
func OverlayUsable(ctx context.Context, scratch string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(scratch, "hoist-overlay-probe-")
	if err != nil {
		return fmt.Errorf("%w: creating a probe directory in %s: %v", ErrOverlayUnavailable, scratch, err)
	}
	defer os.RemoveAll(dir)
	lower, upper, work, merged := filepath.Join(dir, "l"), filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("%w: %v", ErrOverlayUnavailable, err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		hint := ""
		if errors.Is(err, unix.EPERM) {
			hint = " (mounting needs CAP_SYS_ADMIN in the mount namespace's user namespace)"
		}
		return fmt.Errorf("%w: mount: %v%s", ErrOverlayUnavailable, err, hint)
	}
	if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting the overlay probe %s: %w", merged, err)
	}
	return nil
}

// Detect chooses the snapshot method. Only the index method is
// implemented; the returned note says whether overlayfs would be usable
// (and why not), for the build log.
func Detect(ctx context.Context, scratch string) (Method, string) {
	if err := OverlayUsable(ctx, scratch); err != nil {
		return IndexMethod{}, "metadata index (" + err.Error() + ")"
	}
	return IndexMethod{}, "metadata index (overlayfs is mountable here; the overlay method is not implemented yet)"
}
