package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// idMaps are the uid and gid maps of a command's user namespace.
type idMaps struct {
	uids, gids []syscall.SysProcIDMap
	setgroups  bool
}

// userMaps are the maps of c's user namespace. As root (of the host, or
// of the user namespace build-push entered at start, see Rootless) every
// id this process has maps onto itself. Otherwise only the caller's own
// ids can be mapped, to root: c must run as 0:0.
func userMaps(c Command) (idMaps, error) {
	if os.Geteuid() != 0 {
		if c.UID != 0 || c.GID != 0 || !onlyGroup(c.Groups, 0) {
			return idMaps{}, fmt.Errorf("running as uid %d gid %d (groups %v) needs build-push to start as root, or in a user namespace of its own with subordinate ids (Rootless): "+
				"this process is uid %d, and not in such a namespace", c.UID, c.GID, c.Groups, os.Geteuid())
		}
		return idMaps{
			uids: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
			gids: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		}, nil
	}
	uids, err := identityMap("/proc/self/uid_map")
	if err != nil {
		return idMaps{}, err
	}
	gids, err := identityMap("/proc/self/gid_map")
	if err != nil {
		return idMaps{}, err
	}
	var missing []string
	if !mapped(uids, c.UID) {
		missing = append(missing, fmt.Sprintf("uid %d", c.UID))
	}
	seen := map[uint32]bool{}
	for _, g := range append([]uint32{c.GID}, c.Groups...) {
		if !seen[g] && !mapped(gids, g) {
			missing = append(missing, fmt.Sprintf("gid %d", g))
		}
		seen[g] = true
	}
	if len(missing) > 0 {
		return idMaps{}, &UnmappedError{IDs: missing, UIDs: describeMap("/proc/self/uid_map")}
	}
	return idMaps{uids: uids, gids: gids, setgroups: true}, nil
}

// UnmappedError is a USER whose ids the user namespace build-push runs in
// (rootless) does not have.
type UnmappedError struct {
	IDs  []string
	UIDs string // the namespace's uid map, as the host sees it
}

func (e *UnmappedError) Error() string {
	return fmt.Sprintf("%s: not among the ids build-push may use (it runs rootless, in a user namespace mapping %s): "+
		"give the user that runs build-push subordinate ids (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER, "+
		"with newuidmap and newgidmap installed: Debian's package uidmap), or run build-push as root",
		strings.Join(e.IDs, ", "), e.UIDs)
}

// identityMap maps every id of this process's user namespace onto
// itself, for a child namespace.
func identityMap(path string) ([]syscall.SysProcIDMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the user namespace's ids: %w", err)
	}
	var out []syscall.SysProcIDMap
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.ParseUint(f[0], 10, 32)
		size, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || size == 0 {
			continue
		}
		out = append(out, syscall.SysProcIDMap{ContainerID: int(inside), HostID: int(inside), Size: int(size)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s maps no id", path)
	}
	return out, nil
}

func mapped(m []syscall.SysProcIDMap, id uint32) bool {
	for _, r := range m {
		if int64(id) >= int64(r.ContainerID) && int64(id) < int64(r.ContainerID)+int64(r.Size) {
			return true
		}
	}
	return false
}

// describeMap renders a uid map for an error: "0→1000 ×1, 1→100000 ×65536".
func describeMap(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	var parts []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			parts = append(parts, fmt.Sprintf("%s→%s ×%s", f[0], f[1], f[2]))
		}
	}
	return strings.Join(parts, ", ")
}

// userNamespaceRefusal names the setting that forbids unprivileged user
// namespaces, read from procSys (/proc/sys), or "" when none is found.
func userNamespaceRefusal(procSys string) string {
	read := func(p string) (string, bool) {
		data, err := os.ReadFile(filepath.Join(procSys, p))
		if err != nil {
			return "", false
		}
		return strings.TrimSpace(string(data)), true
	}
	var why []string
	if v, ok := read("user/max_user_namespaces"); ok && v == "0" {
		why = append(why, "user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)")
	}
	if v, ok := read("kernel/unprivileged_userns_clone"); ok && v == "0" {
		why = append(why, "kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1)")
	}
	if v, ok := read("kernel/apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		why = append(why, "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1: set it to 0, or give build-push an AppArmor profile with `userns,`)")
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(status))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Seccomp:"); ok && strings.TrimSpace(v) == "2" && len(why) == 0 {
				why = append(why, "a seccomp filter (a container's default profile) may refuse it")
			}
		}
	}
	if len(why) == 0 {
		return ""
	}
	return "; the kernel forbids it here: " + strings.Join(why, "; ")
}
