package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrOverlayUnavailable is returned when overlayfs cannot be mounted
// here; Detect then chooses the index method.
var ErrOverlayUnavailable = errors.New("overlayfs cannot be mounted here")

// overlayOptions are the mount options of every overlay this package
// mounts (the probe included, so that Detect answers for Begin):
// directory renames are refused (EXDEV: tools fall back to copying)
// rather than recorded as redirects, no metadata-only copy-up, no inode
// index. The upper directory then holds whole files and real
// directories only, which is what makes it a layer.
const overlayOptions = "redirect_dir=off,metacopy=off,index=off"

// mountOverlay mounts merged = lower under upper, with work as overlay's
// work directory, and makes the mount private (mounts made under it in
// other namespaces do not come back).
func mountOverlay(lower, upper, work, merged string, userXattr bool) error {
	for _, p := range []string{lower, upper, work} {
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("%w: the path %s holds one of , : \\ (overlay mount options cannot carry it)", ErrOverlayUnavailable, p)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,%s", lower, upper, work, overlayOptions)
	if userXattr {
		// In a user namespace redirect_dir=off means "follow", which
		// userxattr refuses; nofollow creates no redirect either.
		opts = strings.Replace(opts, "redirect_dir=off", "redirect_dir=nofollow", 1) + ",userxattr"
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		hint := ""
		if errors.Is(err, unix.EPERM) {
			hint = " (mounting needs CAP_SYS_ADMIN in the mount namespace's user namespace)"
		}
		return fmt.Errorf("%w: mount -t overlay -o %s: %v%s", ErrOverlayUnavailable, opts, err, hint)
	}
	if err := unix.Mount("", merged, "", unix.MS_PRIVATE, ""); err != nil {
		_ = unix.Unmount(merged, unix.MNT_DETACH)
		return fmt.Errorf("making the overlay at %s private: %w", merged, err)
	}
	return nil
}

// OverlayUsable reports whether an overlay filesystem can be mounted in
// scratch (a directory on a filesystem that may hold an upper directory):
// it mounts and unmounts a throwaway overlay with the options Begin uses.
// A nil error means the overlay method can capture diffs here.
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
	if err := mountOverlay(lower, upper, work, merged, InUserNamespace()); err != nil {
		return err
	}
	if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting the overlay probe %s: %w", merged, err)
	}
	return nil
}

// Detect chooses the snapshot method for roots under scratch: overlayfs
// when an overlay can be mounted there, else the metadata index. The note
// says which and why, for the build log.
func Detect(ctx context.Context, scratch string) (Method, string) {
	if err := OverlayUsable(ctx, scratch); err != nil {
		return IndexMethod{}, "metadata index (" + err.Error() + ")"
	}
	return OverlayMethod{Scratch: scratch}, "overlayfs (the upper directory is the diff)"
}

// KeepsExcluded is implemented by sessions whose Close leaves root's own
// entries at the excluded paths as they were at Begin, whatever was done
// there in the session's Dir (the overlay session drops those paths of
// its upper directory). A caller putting a RUN mount at an excluded path
// may then remove what is there without setting it aside: overlayfs
// refuses to rename a directory that comes from the root (EXDEV), and
// removing it only writes whiteouts.
type KeepsExcluded interface {
	Session
	KeepsExcluded()
}

// Choice is the snapshot input: auto, overlay or index.
type Choice string

const (
	ChooseAuto    Choice = "auto"
	ChooseOverlay Choice = "overlay"
	ChooseIndex   Choice = "index"
)

// ParseChoice reads the snapshot input.
func ParseChoice(s string) (Choice, error) {
	switch c := Choice(strings.ToLower(strings.TrimSpace(s))); c {
	case "", ChooseAuto:
		return ChooseAuto, nil
	case ChooseOverlay, ChooseIndex:
		return c, nil
	}
	return "", fmt.Errorf("snapshot %q: use auto, overlay or index", s)
}

// Select returns the method c asks for, with a note for the build log:
// auto is Detect; overlay fails when overlayfs cannot be mounted in
// scratch; index needs nothing.
func Select(ctx context.Context, c Choice, scratch string) (Method, string, error) {
	switch c {
	case "", ChooseAuto:
		m, note := Detect(ctx, scratch)
		return m, note, nil
	case ChooseOverlay:
		if err := OverlayUsable(ctx, scratch); err != nil {
			return nil, "", fmt.Errorf("snapshot overlay: %w (use snapshot auto or index)", err)
		}
		return OverlayMethod{Scratch: scratch}, "overlayfs (chosen)", nil
	case ChooseIndex:
		return IndexMethod{}, "metadata index (chosen)", nil
	}
	return nil, "", fmt.Errorf("snapshot %q: use auto, overlay or index", c)
}

// OverlayMethod captures a command's changes with overlayfs: the root is
// the lower directory, the command runs in the merged mount, and the
// upper directory is the diff: Diff walks only the upper directory, so
// its cost follows the change whatever the size of the root.
//
// Overlayfs semantics apply to the command: a lower file's hard links
// are broken when one of its names is written (copy-up), as under
// Docker's overlay2; renaming a directory that comes from the root fails
// with EXDEV (mv, cp and package managers fall back to copying); a file
// opened for writing is copied up, so it is in the layer even if left
// unchanged.
//
// Stats: Scanned counts upper entries; Deleted counts whiteouts (a
// deleted directory counts once, where the index method also counts
// what was under it).
type OverlayMethod struct {
	// Scratch holds each session's upper, work and merged directories.
	// On root's filesystem, Close moves the upper entries into root by
	// rename; elsewhere it copies them. Empty: root's parent directory.
	Scratch string
	// UserXattr mounts with userxattr (overlay inside a user namespace),
	// where overlay's own attributes are user.overlay.*. Implied when
	// the process is in a user namespace (build-push run rootless).
	UserXattr bool
}

// InUserNamespace tells whether the process runs in a user namespace
// other than the host's (whose uid map is the whole range onto itself).
func InUserNamespace() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return strings.Join(strings.Fields(string(data)), " ") != "0 0 4294967295"
}

func (OverlayMethod) Name() string { return "overlay" }

// Begin mounts an overlay of root and returns the session; the command
// must run in its Dir (the merged mount). Root must not change until
// Close.
func (m OverlayMethod) Begin(ctx context.Context, root string, exclude []string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("overlaying %s: %w", root, err)
	}
	var rst unix.Stat_t
	if err := unix.Stat(abs, &rst); err != nil {
		return nil, fmt.Errorf("overlaying %s: %w", abs, err)
	}
	if !isDir(rst.Mode) {
		return nil, fmt.Errorf("overlaying %s: not a directory", abs)
	}
	scratch := m.Scratch
	if scratch == "" {
		scratch = filepath.Dir(abs)
	}
	if scratch, err = filepath.Abs(scratch); err != nil {
		return nil, fmt.Errorf("overlaying %s: %w", abs, err)
	}
	if scratch == abs || strings.HasPrefix(scratch, abs+"/") {
		return nil, fmt.Errorf("overlaying %s: the scratch directory %s is inside it (overlayfs layers may not overlap)", abs, scratch)
	}
	dir, err := os.MkdirTemp(scratch, "hoist-overlay-")
	if err != nil {
		return nil, fmt.Errorf("overlaying %s: %w", abs, err)
	}
	s := &overlaySession{
		root: abs, dir: dir, upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work"),
		merged: filepath.Join(dir, "merged"), exclude: map[string]bool{}, userXattr: m.UserXattr || InUserNamespace(),
	}
	for _, e := range exclude {
		s.exclude[strings.Trim(path.Clean("/"+e), "/")] = true
	}
	fail := func(err error) (Session, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("overlaying %s: %w", abs, err)
	}
	for _, d := range []string{s.upper, s.work, s.merged} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(err)
		}
	}
	// The merged root takes the upper directory's attributes: give it
	// the root's, so / looks the same to the command.
	if err := os.Lchown(s.upper, int(rst.Uid), int(rst.Gid)); err != nil {
		return fail(err)
	}
	if err := unix.Chmod(s.upper, rst.Mode&0o7777); err != nil {
		return fail(err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, s.upper, []unix.Timespec{rst.Atim, rst.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail(err)
	}
	if err := mountOverlay(abs, s.upper, s.work, s.merged, s.userXattr); err != nil {
		return fail(err)
	}
	s.mounted = true
	return s, nil
}

// overlaySession is one command's overlay: dir holds upper, work and
// merged.
type overlaySession struct {
	root, dir, upper, work, merged string
	exclude                        map[string]bool
	userXattr                      bool
	mounted, closed                bool
}

func (s *overlaySession) Dir() string { return s.merged }

// KeepsExcluded: what the command's Dir holds at an excluded path never
// reaches root.
func (s *overlaySession) KeepsExcluded() {}

func (s *overlaySession) Diff(ctx context.Context, w io.Writer, o Options) (Stats, error) {
	if s.closed {
		return Stats{}, fmt.Errorf("diffing %s: the overlay session is closed", s.root)
	}
	return s.diff(ctx, w, o, s.exclude)
}

// Close unmounts the overlay and leaves root as the command left it, the
// end state of the index method, whose command ran in root itself:
// upper entries move into root (by rename on the same filesystem, else
// as a layer applied with the extractor), whiteouts delete, opaque
// directories replace. Excluded paths are the exception: root keeps what
// it had there before Begin (see KeepsExcluded). Close does so whether or
// not Diff was called (a failed command's changes stay too, as they would
// in root; a builder discards a failed stage's root). Then the scratch
// directory is removed.
func (s *overlaySession) Close() error {
	if s.closed {
		return nil
	}
	if s.mounted {
		err := unix.Unmount(s.merged, 0)
		if errors.Is(err, unix.EBUSY) {
			// A process the command left behind (isolation chroot has no
			// PID namespace to end them) still uses it: detach it, as
			// the index method would let such a process write on in root.
			err = unix.Unmount(s.merged, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmounting the overlay at %s: %w", s.merged, err)
		}
		s.mounted = false
	}
	if err := s.mergeDown(context.Background()); err != nil {
		return fmt.Errorf("moving the command's changes from %s into %s: %w", s.upper, s.root, err)
	}
	s.closed = true
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("removing the overlay's scratch directory: %w", err)
	}
	return nil
}
