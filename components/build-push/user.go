package buildpush

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hoist-ci/hoist/internal/layer"
)

// owner resolves --chown (or the USER a WORKDIR is made for) to uid:gid,
// as BuildKit does: a name is looked up in the stage's /etc/passwd and
// /etc/group; a user without a group gets its primary group (a numeric
// one, the same number).
func (b *builder) owner(ctx context.Context, out *stageOut, spec, what string) (*layer.Owner, error) {
	if spec == "" {
		return nil, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	o := &layer.Owner{}
	uid, err := strconv.Atoi(user)
	primary := -1
	if err != nil {
		data, ok, rerr := b.readFile(ctx, out, "/etc/passwd")
		if rerr != nil {
			return nil, rerr
		}
		if !ok {
			return nil, fmt.Errorf("%s=%s: the stage has no /etc/passwd to look up user %q; use a numeric uid", what, spec, user)
		}
		found := false
		for _, e := range parsePasswd(data) {
			if e.name == user {
				uid, primary, found = e.uid, e.gid, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%s=%s: no user %q in the stage's /etc/passwd", what, spec, user)
		}
	}
	o.UID = uid
	switch {
	case !hasGroup && primary >= 0:
		o.GID = primary
	case !hasGroup:
		o.GID = uid
	default:
		gid, err := strconv.Atoi(group)
		if err != nil {
			data, ok, rerr := b.readFile(ctx, out, "/etc/group")
			if rerr != nil {
				return nil, rerr
			}
			if !ok {
				return nil, fmt.Errorf("%s=%s: the stage has no /etc/group to look up group %q; use a numeric gid", what, spec, group)
			}
			found := false
			for _, g := range parseGroup(data) {
				if g.name == group {
					gid, found = g.gid, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("%s=%s: no group %q in the stage's /etc/group", what, spec, group)
			}
		}
		o.GID = gid
	}
	return o, nil
}

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
