package dockerfile

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/hoist-ci/hoist/internal/layer"
)

// Chmod is a parsed --chmod: octal (0755) or symbolic (u=rwx,go=rx, +x,
// a+X). Apply gives the mode of a copied file or directory.
type Chmod struct {
	octal   bool
	mode    fs.FileMode
	clauses []chmodClause
}

type chmodClause struct {
	who  fs.FileMode // mask of the bits the clause touches (ugo)
	op   byte        // + - =
	perm string      // rwxXst
	whoS string
}

// ParseChmod parses a --chmod value.
func ParseChmod(s string) (*Chmod, error) {
	if s == "" {
		return nil, fmt.Errorf("empty mode")
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 8, 32)
		if err != nil || n > 07777 {
			return nil, fmt.Errorf("invalid octal mode: use 0-7 digits such as 0644 or 755")
		}
		return &Chmod{octal: true, mode: layer.PermFromTar(int64(n))}, nil
	}
	c := &Chmod{}
	for _, part := range strings.Split(s, ",") {
		i := 0
		for i < len(part) && strings.IndexByte("ugoa", part[i]) >= 0 {
			i++
		}
		who := part[:i]
		if i >= len(part) || strings.IndexByte("+-=", part[i]) < 0 {
			return nil, fmt.Errorf("invalid symbolic mode %q: want [ugoa]*[+-=][rwxXst]*, such as u+x or go=rx", part)
		}
		op := part[i]
		perm := part[i+1:]
		for _, r := range perm {
			if !strings.ContainsRune("rwxXst", r) {
				return nil, fmt.Errorf("invalid permission %q in %q: use r, w, x, X, s or t", r, part)
			}
		}
		cl := chmodClause{op: op, perm: perm, whoS: who}
		if who == "" || strings.Contains(who, "a") {
			cl.who = 0o777
		} else {
			for _, w := range who {
				switch w {
				case 'u':
					cl.who |= 0o700
				case 'g':
					cl.who |= 0o070
				case 'o':
					cl.who |= 0o007
				}
			}
		}
		c.clauses = append(c.clauses, cl)
	}
	return c, nil
}

// Octal reports whether the mode was given in octal (BuildKit creates the
// destination's missing directories with its bits then).
func (c *Chmod) Octal() bool { return c.octal }

// Apply returns the permission bits (with setuid/setgid/sticky) for an
// entry whose current mode is cur.
func (c *Chmod) Apply(cur fs.FileMode, isDir bool) fs.FileMode {
	if c.octal {
		return c.mode
	}
	perm := cur & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	for _, cl := range c.clauses {
		var bits fs.FileMode
		for _, r := range cl.perm {
			switch r {
			case 'r':
				bits |= 0o444
			case 'w':
				bits |= 0o222
			case 'x':
				bits |= 0o111
			case 'X':
				if isDir || cur&0o111 != 0 {
					bits |= 0o111
				}
			}
		}
		bits &= cl.who
		var special fs.FileMode
		if strings.ContainsRune(cl.perm, 's') {
			if cl.who&0o700 != 0 {
				special |= fs.ModeSetuid
			}
			if cl.who&0o070 != 0 {
				special |= fs.ModeSetgid
			}
		}
		if strings.ContainsRune(cl.perm, 't') {
			special |= fs.ModeSticky
		}
		switch cl.op {
		case '+':
			perm |= bits | special
		case '-':
			perm &^= bits | special
		case '=':
			perm &^= cl.who
			if cl.who&0o700 != 0 {
				perm &^= fs.ModeSetuid
			}
			if cl.who&0o070 != 0 {
				perm &^= fs.ModeSetgid
			}
			perm |= bits | special
		}
	}
	return perm
}
