package buildpush

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// runUser is who a RUN runs as.
type runUser struct {
	UID, GID uint32
	Groups   []uint32
	Home     string
}

// passwdEntry is a line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 6 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	}
	return out
}

// groupEntry is a line of /etc/group.
type groupEntry struct {
	name    string
	gid     int
	members []string
}

func parseGroup(data []byte) []groupEntry {
	var out []groupEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out
}

// resolveUser turns USER (name or uid, optionally :group or :gid) into
// ids, as Docker does: names are looked up in the stage's /etc/passwd and
// /etc/group; a user without a group gets its primary group and the
// groups that list it as a member; an explicit group is the only one; a
// numeric uid missing from /etc/passwd runs with gid 0 and HOME /. The
// primary group is among the groups too, as with Docker's runtime
// (checked against docker run on the rig's engine).
func resolveUser(ctx context.Context, fs *stageFS, spec string) (runUser, error) {
	u := runUser{Home: "/"}
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" {
		user = "root"
		if spec == "" {
			hasGroup = false
		}
	}
	read := func(p string) ([]byte, error) {
		data, _, err := fs.read(ctx, p)
		return data, err
	}
	passwd, err := read("/etc/passwd")
	if err != nil {
		return u, fmt.Errorf("USER %s: reading /etc/passwd: %w", spec, err)
	}
	var entry *passwdEntry
	entries := parsePasswd(passwd)
	uid, numeric := strconv.Atoi(user)
	for i := range entries {
		if (numeric == nil && entries[i].uid == uid) || (numeric != nil && entries[i].name == user) {
			entry = &entries[i]
			break
		}
	}
	switch {
	case entry != nil:
		u.UID, u.GID = uint32(entry.uid), uint32(entry.gid)
		if entry.home != "" {
			u.Home = entry.home
		}
	case numeric == nil && uid >= 0:
		u.UID = uint32(uid)
	case user == "root":
		// No /etc/passwd (FROM scratch): root is 0:0 all the same.
	default:
		return u, fmt.Errorf("USER %s: no user %q in the stage's /etc/passwd; use a numeric uid or create the user first (RUN adduser …)", spec, user)
	}
	groupData, err := read("/etc/group")
	if err != nil {
		return u, fmt.Errorf("USER %s: reading /etc/group: %w", spec, err)
	}
	groups := parseGroup(groupData)
	if hasGroup {
		gid, err := strconv.Atoi(group)
		if err != nil {
			found := false
			for _, g := range groups {
				if g.name == group {
					gid, found = g.gid, true
					break
				}
			}
			if !found {
				return u, fmt.Errorf("USER %s: no group %q in the stage's /etc/group; use a numeric gid", spec, group)
			}
		}
		if gid < 0 {
			return u, fmt.Errorf("USER %s: a gid cannot be negative", spec)
		}
		u.GID = uint32(gid)
		u.Groups = []uint32{u.GID}
		return u, nil
	}
	if entry != nil {
		seen := map[uint32]bool{}
		for _, g := range groups {
			for _, m := range g.members {
				if m == entry.name && !seen[uint32(g.gid)] {
					seen[uint32(g.gid)] = true
					u.Groups = append(u.Groups, uint32(g.gid))
				}
			}
		}
	}
	// Docker's runtime lists the primary group last among the process's
	// groups (id prints groups=50(staff),1000(app)).
	if !slices.Contains(u.Groups, u.GID) {
		u.Groups = append(u.Groups, u.GID)
	}
	return u, nil
}
