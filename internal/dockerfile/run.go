package dockerfile

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Run is RUN after evaluation: what to execute, as whom, where, with which
// environment and mounts. The command line itself is not expanded (the
// shell does that at run time, as in Docker); only --mount values are.
type Run struct {
	// Args is the argv to execute: the SHELL prepended to a shell-form
	// command, the heredoc resolved as BuildKit resolves it.
	Args []string
	// Scripts are heredocs that run as files (a single heredoc starting
	// with #!): Args[0] names Scripts[0].Path.
	Scripts []Script
	// Env is the command's environment: the image's ENV, then the stage's
	// ARGs that ENV does not override (ARGs are not persisted), and PATH
	// when neither sets it.
	Env     []string
	Dir     string
	User    string
	Network string // "", "default", "none" or "host"
	Mounts  []Mount
	// Instruction is what the image history records (and the cache key
	// covers): BuildKit's "RUN |n K=V /bin/sh -c cmd" form.
	Instruction string
	// Vars are the ARG and ENV values visible to the command, sorted.
	Vars []string
	// Platform of the stage (os/arch[/variant]): a foreign one needs an
	// emulator.
	Platform string
	Line     int
}

func (*Run) op() {}

// ScriptDir is where a RUN's heredoc scripts are while it runs, as
// BuildKit mounts them: the sandbox shows them there (a tmpfs, or files
// removed after the command), never in the stage's layer.
const ScriptDir = "/dev/pipes"

// Script is a heredoc written to a file for the command to execute.
type Script struct {
	Path string // absolute path inside the root
	Data string
}

// MountType of a RUN --mount.
type MountType string

const (
	MountBind   MountType = "bind"
	MountCache  MountType = "cache"
	MountTmpfs  MountType = "tmpfs"
	MountSecret MountType = "secret"
)

// Mount is one RUN --mount after expansion, with Docker's defaults filled
// in (secret targets under /run/secrets, cache ids from the target).
type Mount struct {
	Type   MountType
	Target string // absolute, resolved against WORKDIR
	// Source is a path in the context, the --from stage or image (bind,
	// cache from), or nothing.
	Source string
	// FromStage / FromImage: bind (or cache) contents from a stage or an
	// image instead of the build context.
	FromStage *Stage
	FromImage string
	ReadOnly  bool
	// ID names a cache (default: the target) or a secret (default: the
	// target's base name).
	ID       string
	Sharing  string
	Required bool
	// Env, for a secret, is the variable that carries its value instead of
	// (or besides, with a target) a file.
	Env       string
	Mode      *uint32
	UID, GID  *int
	SizeLimit int64
}

func (st *State) runOp(c *instructions.RunCommand) (Op, error) {
	loc := c.Location()
	cfg := &st.Config.Config
	if sec := instructions.GetSecurity(c); sec != "" && sec != "sandbox" {
		return nil, st.errf(loc, "RUN --security=%s is not supported by build-push: commands run unprivileged", sec)
	}
	vars := map[string]string{}
	if err := c.Expand(func(w string) (string, error) { return st.expand(w, vars) }); err != nil {
		return nil, st.errf(loc, "expanding RUN --mount: %w", err)
	}
	r := &Run{
		Dir:      cfg.WorkingDir,
		User:     cfg.User,
		Network:  instructions.GetNetwork(c),
		Line:     lineOf(loc),
		Vars:     st.Vars(),
		Platform: FormatPlatform(st.stage.Platform),
	}
	if r.Dir == "" {
		r.Dir = "/"
	}
	for _, m := range instructions.GetMounts(c) {
		mm, err := st.mount(m, r.Dir)
		if err != nil {
			return nil, st.errf(loc, "RUN --mount: %w", err)
		}
		r.Mounts = append(r.Mounts, mm)
	}
	args := slices.Clone(c.CmdLine)
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return nil, st.errf(loc, "RUN with a heredoc must use the shell form")
		}
		if h := parser.MustParseHeredoc(args[0]); h != nil {
			// The command is only the heredoc: BuildKit runs its text
			// with the shell, or as a file when it starts with #!.
			f := c.Files[0]
			data := f.Data
			if f.Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				p := ScriptDir + "/" + f.Name
				r.Scripts = append(r.Scripts, Script{Path: p, Data: data})
				// Run by the shell, as BuildKit does (sh -c /dev/pipes/EOF).
				args = []string{p}
			} else {
				args = []string{data}
			}
		} else {
			// A command with heredocs in it: the shell reads them.
			full := args[0]
			for _, f := range c.Files {
				full += "\n" + f.Data + f.Name
			}
			args = []string{full}
		}
	}
	if r.Args == nil {
		if c.PrependShell {
			sh := cfg.Shell
			if len(sh) == 0 {
				sh = []string{"/bin/sh", "-c"}
			}
			args = append(slices.Clone(sh), args...)
		}
		r.Args = args
	}
	if len(r.Args) == 0 || (len(r.Args) == 1 && strings.TrimSpace(r.Args[0]) == "") {
		return nil, st.errf(loc, "RUN has no command")
	}
	r.Env = st.runEnv()
	r.Instruction = st.runText(r.Args)
	return r, nil
}

// runEnv is the environment of a RUN: the state's (ENV and the ARGs with
// a value, the latest winning), and the default PATH when none is set.
func (st *State) runEnv() []string {
	env := slices.Clone(st.env)
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" {
			return env
		}
	}
	return append(env, DefaultPathEnv)
}

// runText is the history line, as BuildKit writes it: "RUN |2 A=1 B=2
// /bin/sh -c cmd" with every ARG declared so far (in declaration order,
// its value from the environment when ENV changed it, empty when unset).
func (st *State) runText(args []string) string {
	env := st.vars()
	var set []string
	for _, a := range st.args {
		v, ok := env[a.name]
		if !ok {
			v = a.value
		}
		set = append(set, a.name+"="+v)
	}
	text := "RUN "
	if len(set) > 0 {
		text += fmt.Sprintf("|%d %s ", len(set), strings.Join(set, " "))
	}
	return text + strings.Join(args, " ")
}

func (st *State) mount(m *instructions.Mount, workdir string) (Mount, error) {
	out := Mount{Type: MountType(m.Type), Source: m.Source, ReadOnly: m.ReadOnly, ID: m.CacheID, Sharing: string(m.CacheSharing), Required: m.Required, SizeLimit: m.SizeLimit}
	if m.Env != nil {
		out.Env = *m.Env
	}
	if m.Mode != nil {
		v := uint32(*m.Mode)
		out.Mode = &v
	}
	if m.UID != nil {
		v := int(*m.UID)
		out.UID = &v
	}
	if m.GID != nil {
		v := int(*m.GID)
		out.GID = &v
	}
	target := m.Target
	switch out.Type {
	case MountSecret:
		if out.ID == "" {
			src := m.Source
			if src == "" {
				src = target
			}
			out.ID = path.Base(src)
		}
		if target == "" && out.Env == "" {
			target = "/run/secrets/" + out.ID
		}
	case MountCache, MountBind, MountTmpfs:
		if target == "" {
			return out, fmt.Errorf("type=%s needs a target", out.Type)
		}
	case "ssh":
		return out, fmt.Errorf("type=ssh is not supported by build-push: use a secret mount with a deploy key instead")
	default:
		return out, fmt.Errorf("unsupported mount type %q", m.Type)
	}
	if target != "" {
		if !path.IsAbs(target) {
			target = path.Join(workdir, target)
		}
		target = path.Clean(target)
		if target == "/" {
			return out, fmt.Errorf("type=%s cannot mount over /", out.Type)
		}
	}
	out.Target = target
	if out.Type == MountBind && m.From == "" {
		// The build context, like COPY's sources: ../ does not leave it.
		if p := path.Clean(m.Source); p == ".." || strings.HasPrefix(p, "../") {
			return out, fmt.Errorf("type=bind,source=%s points above the build context with ../: a bind mount, like COPY, only reads inside the build context; move it into the context or change the context directory", m.Source)
		}
	}
	if out.Type == MountCache && out.ID == "" {
		out.ID = target
	}
	if m.From != "" {
		if out.Type != MountBind && out.Type != MountCache {
			return out, fmt.Errorf("type=%s cannot have from=", out.Type)
		}
		s, img, err := st.plan.FromStage(m.From)
		if err != nil {
			return out, fmt.Errorf("from=%s: %w", m.From, err)
		}
		if s != nil {
			if s == st.stage {
				return out, fmt.Errorf("from=%s names this stage", m.From)
			}
			out.FromStage = s
		} else {
			out.FromImage = img
		}
	}
	return out, nil
}
