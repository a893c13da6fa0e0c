package dockerfile

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// DefaultPathEnv is the PATH BuildKit gives images built FROM scratch.
const DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// State is a stage being evaluated: the image config so far and the
// variables its instructions see. Feed it instructions with Apply.
type State struct {
	plan  *Plan
	stage *Stage
	// Config is the image config so far (base config, then instructions).
	Config v1.ConfigFile
	// args are the ARGs declared in this stage (and the stage it is FROM),
	// in BuildKit's order: where each was first declared, with its latest
	// value.
	args []arg
	// env is the environment as BuildKit's state carries it: the base's
	// ENV, then every ENV and every ARG with a value, the latest winning.
	// Expansion and RUN see it; the image's ENV is Config.Env.
	env    []string
	cmdSet bool
	lex    *shell.Lex
}

type arg struct {
	name  string
	value string
	set   bool
}

// declare records an ARG: a new one at the end, a re-declared one in its
// place with its new value.
func (st *State) declare(a arg) {
	for i := range st.args {
		if st.args[i].name == a.name {
			st.args[i] = a
			return
		}
	}
	st.args = append(st.args, a)
}

// Op is a filesystem change the builder performs: a COPY, an ADD, a
// WORKDIR or a RUN.
type Op interface {
	op()
}

// Copy is COPY or ADD after expansion.
type Copy struct {
	Add bool
	// Sources are the source paths after expansion (context-relative, or
	// relative to the --from stage's root, or URLs for ADD).
	Sources []string
	// Inline are heredoc sources (COPY <<EOF dest).
	Inline []instructions.SourceContent
	// Dest is absolute, resolved against WORKDIR; DestDir is true when the
	// destination is a directory (trailing slash or several sources).
	Dest    string
	DestDir bool
	// DestText is the destination as the instruction writes it (after
	// expansion), for the image history; DestSlash is true when it names
	// a directory by its form (a trailing slash, ".").
	DestText  string
	DestSlash bool
	// FromStage is set for COPY --from=<stage>; FromImage for an image.
	FromStage *Stage
	FromImage string
	Chown     string
	Chmod     string
	Link      bool
	Checksum  string
	Unpack    *bool
	Excludes  []string
	Parents   bool
	// Instruction is the expanded instruction (for the cache key and the
	// image history); Vars are the ARG/ENV values the expansion used.
	Instruction string
	Vars        map[string]string
	Line        int
}

func (*Copy) op() {}

// DestPath is the absolute destination as BuildKit's copy receives it: a
// trailing slash when the instruction's form names a directory.
func (c *Copy) DestPath() string {
	if c.DestSlash && c.Dest != "/" {
		return c.Dest + "/"
	}
	return c.Dest
}

// Workdir is WORKDIR: BuildKit creates the directory (owned by the USER in
// effect) as a layer of its own when it does not exist yet.
type Workdir struct {
	Path string
	User string
	Line int
}

func (*Workdir) op() {}

// ScratchRooted is true when every layer of the stage so far was made by
// this build (the stage's chain of bases starts FROM scratch), so the
// builder knows its whole filesystem without reading a base image.
func (st *State) ScratchRooted() bool {
	for s := st.stage; s != nil; s = s.BaseStage {
		if s.Scratch {
			return true
		}
		if s.BaseStage == nil {
			return false
		}
	}
	return false
}

// Stage is the stage this state evaluates.
func (st *State) Stage() *Stage { return st.stage }

// NewState starts a stage from its base's config (nil for scratch). A
// stage FROM another stage goes on from that stage's state with
// FromStage.
func (p *Plan) NewState(s *Stage, base *v1.ConfigFile) *State {
	st := &State{plan: p, stage: s, lex: shell.NewLex(p.File.Escape)}
	defer func() { st.env = slices.Clone(st.Config.Config.Env) }()
	if base != nil {
		st.Config = *cloneConfig(base)
		st.Config.History = slices.Clone(base.History)
		st.Config.RootFS.DiffIDs = slices.Clone(base.RootFS.DiffIDs)
		// A stage's own image starts with no ONBUILD triggers: those of
		// the base run now (Triggers) and are not inherited.
		st.Config.Config.OnBuild = nil
	} else {
		st.Config.Config.Env = []string{DefaultPathEnv}
		st.Config.Config.WorkingDir = "/"
		st.Config.RootFS.Type = "layers"
	}
	if st.Config.RootFS.Type == "" {
		st.Config.RootFS.Type = "layers"
	}
	if base == nil || base.OS == "" {
		st.Config.OS = s.Platform.OS
		st.Config.Architecture = s.Platform.Architecture
		st.Config.Variant = s.Platform.Variant
	}
	return st
}

// FromStage carries on from the state of the stage this one is FROM: its
// ARGs (declared there, with their values) and its environment, as
// BuildKit's child stage starts from its parent's state.
func (st *State) FromStage(parent *State) {
	st.args = slices.Clone(parent.args)
	st.env = slices.Clone(parent.env)
}

func cloneConfig(c *v1.ConfigFile) *v1.ConfigFile {
	out := c.DeepCopy()
	return out
}

// Triggers parses the base image's ONBUILD instructions, which run before
// the stage's own.
func (st *State) Triggers(base *v1.ConfigFile) ([]instructions.Command, error) {
	if base == nil {
		return nil, nil
	}
	var cmds []instructions.Command
	for _, expr := range base.Config.OnBuild {
		res, err := parser.Parse(strings.NewReader(expr))
		if err != nil {
			return nil, st.errf(nil, "ONBUILD trigger %q from the base image: %w", expr, err)
		}
		for _, n := range res.AST.Children {
			v, err := instructions.ParseInstruction(n)
			if err != nil {
				return nil, st.errf(nil, "ONBUILD trigger %q from the base image: %w", expr, err)
			}
			c, ok := v.(instructions.Command)
			if !ok {
				return nil, st.errf(nil, "ONBUILD trigger %q from the base image is not an instruction", expr)
			}
			cmds = append(cmds, c)
		}
	}
	return cmds, nil
}

func (st *State) errf(loc []parser.Range, format string, a ...any) error {
	if loc == nil {
		loc = st.stage.Location
	}
	return errorAt(st.plan.File.Name, loc, fmt.Errorf(format, a...))
}

// vars is what expansion sees: the state's environment.
func (st *State) vars() mapEnv {
	m := mapEnv{}
	for _, kv := range st.env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// expand expands one word and records the variables it used.
func (st *State) expand(word string, vars map[string]string) (string, error) {
	env := st.vars()
	res, err := st.lex.ProcessWordWithMatches(word, env)
	if err != nil {
		return "", err
	}
	for k := range res.Matched {
		if vars != nil {
			vars[k] = env[k]
		}
	}
	return res.Result, nil
}

// Vars are the ARG and ENV values visible to the next instruction, sorted
// (a RUN's cache key includes them).
func (st *State) Vars() []string {
	env := st.vars()
	out := make([]string, 0, len(env))
	for _, k := range env.Keys() {
		out = append(out, k+"="+env[k])
	}
	return out
}

func (st *State) history(cmd instructions.Command, text string, empty bool) {
	st.Config.History = append(st.Config.History, v1.History{CreatedBy: text, Comment: "hoist build-push", EmptyLayer: empty})
}

// Apply evaluates one instruction. Metadata instructions change Config and
// return nil; COPY and ADD return the operation for the builder.
func (st *State) Apply(cmd instructions.Command) (Op, error) {
	loc := cmd.Location()
	cfg := &st.Config.Config
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		// Defaults are expanded with the variables from before the
		// instruction (ARG X=1 Y=$X leaves Y empty), as BuildKit does.
		defaults := make([]*string, len(c.Args))
		for i, kv := range c.Args {
			if kv.Value == nil {
				continue
			}
			v, err := st.expand(*kv.Value, nil)
			if err != nil {
				return nil, st.errf(loc, "expanding ARG %s: %w", kv.Key, err)
			}
			defaults[i] = &v
		}
		var text []string
		for i, kv := range c.Args {
			a := arg{name: kv.Key}
			if v, ok := st.plan.opts.BuildArgs[kv.Key]; ok {
				a.value, a.set = v, true
				st.plan.used[kv.Key] = true
			} else if defaults[i] != nil {
				a.value, a.set = *defaults[i], true
			} else if v, ok := st.plan.global[kv.Key]; ok {
				// ARG NAME re-declares a meta ARG (or a predefined one).
				a.value, a.set = v, true
			}
			st.declare(a)
			if a.set {
				st.env = setEnv(st.env, a.name, a.value)
				text = append(text, a.name+"="+a.value)
			} else {
				text = append(text, a.name)
			}
		}
		st.history(cmd, "ARG "+strings.Join(text, " "), true)
	case *instructions.EnvCommand:
		// Every pair is expanded with the environment from before the
		// instruction (ENV A=1 B=$A gives B the old A), as BuildKit does.
		pairs := make([][2]string, 0, len(c.Env))
		for _, kv := range c.Env {
			k, err := st.expand(kv.Key, nil)
			if err != nil {
				return nil, st.errf(loc, "expanding ENV: %w", err)
			}
			v, err := st.expand(kv.Value, nil)
			if err != nil {
				return nil, st.errf(loc, "expanding ENV %s: %w", k, err)
			}
			pairs = append(pairs, [2]string{k, v})
		}
		text := "ENV"
		for _, p := range pairs {
			cfg.Env = setEnv(cfg.Env, p[0], p[1])
			st.env = setEnv(st.env, p[0], p[1])
			text += " " + p[0] + "=" + p[1]
		}
		st.history(cmd, text, true)
	case *instructions.LabelCommand:
		labels := slices.Clone(c.Labels)
		if err := (&instructions.LabelCommand{Labels: labels}).Expand(func(w string) (string, error) { return st.expand(w, nil) }); err != nil {
			return nil, st.errf(loc, "expanding LABEL: %w", err)
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range labels {
			cfg.Labels[kv.Key] = kv.Value
		}
		st.history(cmd, "LABEL "+kvText(labels), true)
	case *instructions.MaintainerCommand:
		st.Config.Author = c.Maintainer
		st.history(cmd, "MAINTAINER "+c.Maintainer, true)
	case *instructions.WorkdirCommand:
		p, err := st.expand(c.Path, nil)
		if err != nil {
			return nil, st.errf(loc, "expanding WORKDIR: %w", err)
		}
		if !path.IsAbs(p) {
			wd := cfg.WorkingDir
			if wd == "" {
				wd = "/"
			}
			p = path.Join(wd, p)
		}
		cfg.WorkingDir = path.Clean(p)
		return &Workdir{Path: cfg.WorkingDir, User: cfg.User, Line: lineOf(loc)}, nil
	case *instructions.UserCommand:
		u, err := st.expand(c.User, nil)
		if err != nil {
			return nil, st.errf(loc, "expanding USER: %w", err)
		}
		cfg.User = u
		st.history(cmd, "USER "+u, true)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = st.cmdLine(c.ShellDependantCmdLine)
		if !st.cmdSet {
			cfg.Cmd = nil
		}
		st.history(cmd, "ENTRYPOINT "+jsonList(cfg.Entrypoint), true)
	case *instructions.CmdCommand:
		cfg.Cmd = st.cmdLine(c.ShellDependantCmdLine)
		// BuildKit marks every CMD so (a Docker image spec field).
		cfg.ArgsEscaped = true
		st.cmdSet = true
		st.history(cmd, "CMD "+jsonList(cfg.Cmd), true)
	case *instructions.ShellCommand:
		cfg.Shell = slices.Clone(c.Shell)
		st.history(cmd, fmt.Sprintf("SHELL %v", cfg.Shell), true)
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		var added []string
		for _, word := range c.Ports {
			ps, err := st.lex.ProcessWords(word, st.vars())
			if err != nil {
				return nil, st.errf(loc, "expanding EXPOSE: %w", err)
			}
			for _, p := range ps {
				ports, err := parsePorts(p)
				if err != nil {
					return nil, st.errf(loc, "EXPOSE %s: %w", p, err)
				}
				for _, port := range ports {
					cfg.ExposedPorts[port] = struct{}{}
					added = append(added, port)
				}
			}
		}
		// In the parser's order (it sorts the words), as BuildKit writes it.
		st.history(cmd, "EXPOSE ["+strings.Join(added, " ")+"]", true)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		var vols []string
		for _, v := range c.Volumes {
			x, err := st.expand(v, nil)
			if err != nil {
				return nil, st.errf(loc, "expanding VOLUME: %w", err)
			}
			if strings.TrimSpace(x) == "" {
				return nil, st.errf(loc, "VOLUME specified can not be an empty string")
			}
			cfg.Volumes[x] = struct{}{}
			vols = append(vols, x)
		}
		st.history(cmd, fmt.Sprintf("VOLUME %v", vols), true)
	case *instructions.StopSignalCommand:
		s, err := st.expand(c.Signal, nil)
		if err != nil {
			return nil, st.errf(loc, "expanding STOPSIGNAL: %w", err)
		}
		if err := validSignal(s); err != nil {
			return nil, st.errf(loc, "STOPSIGNAL %s: %w", s, err)
		}
		cfg.StopSignal = s
		st.history(cmd, "STOPSIGNAL "+s, true)
	case *instructions.HealthCheckCommand:
		h := &v1.HealthConfig{Test: slices.Clone(c.Health.Test), Interval: c.Health.Interval, Timeout: c.Health.Timeout, StartPeriod: c.Health.StartPeriod, Retries: c.Health.Retries}
		if cfg.Healthcheck != nil && len(h.Test) == 0 {
			h.Test = cfg.Healthcheck.Test
		}
		cfg.Healthcheck = h
		// BuildKit writes the instruction's whole health config, %+v.
		st.history(cmd, fmt.Sprintf("HEALTHCHECK %+v", *c.Health), true)
	case *instructions.OnbuildCommand:
		// Stored for the images built FROM this one; BuildKit writes no
		// history for it.
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.CopyCommand:
		return st.copyOp(loc, false, c.SourcesAndDest, c.From, c.Chown, c.Chmod, c.Link, "", nil, c.ExcludePatterns, c.Parents, c.String())
	case *instructions.AddCommand:
		if c.KeepGitDir != nil {
			return nil, st.errf(loc, "ADD --keep-git-dir (git sources) is not supported by build-push")
		}
		return st.copyOp(loc, true, c.SourcesAndDest, "", c.Chown, c.Chmod, c.Link, c.Checksum, c.Unpack, c.ExcludePatterns, false, c.String())
	case *instructions.RunCommand:
		return st.runOp(c)
	default:
		return nil, st.errf(loc, "instruction %s is not supported by build-push", strings.ToUpper(cmd.Name()))
	}
	return nil, nil
}

func (st *State) cmdLine(c instructions.ShellDependantCmdLine) []string {
	line := slices.Clone(c.CmdLine)
	if c.PrependShell && line != nil {
		sh := st.Config.Config.Shell
		if len(sh) == 0 {
			sh = []string{"/bin/sh", "-c"}
		}
		line = append(slices.Clone(sh), line...)
	}
	return line
}

func (st *State) copyOp(loc []parser.Range, add bool, sd instructions.SourcesAndDest, from, chown, chmod string, link bool, checksum string, unpack *bool, excludes []string, parents bool, text string) (Op, error) {
	name := "COPY"
	if add {
		name = "ADD"
	}
	vars := map[string]string{}
	exp := func(w string) (string, error) { return st.expand(w, vars) }
	op := &Copy{Add: add, Link: link, Unpack: unpack, Parents: parents, Line: lineOf(loc), Vars: vars}
	for _, s := range sd.SourcePaths {
		v, err := exp(s)
		if err != nil {
			return nil, st.errf(loc, "expanding %s source %s: %w", name, s, err)
		}
		op.Sources = append(op.Sources, v)
	}
	for _, c := range sd.SourceContents {
		if c.Expand {
			v, err := exp(c.Data)
			if err != nil {
				return nil, st.errf(loc, "expanding %s heredoc: %w", name, err)
			}
			c.Data = v
		}
		op.Inline = append(op.Inline, c)
	}
	dest, err := exp(sd.DestPath)
	if err != nil {
		return nil, st.errf(loc, "expanding %s destination: %w", name, err)
	}
	op.DestText = dest
	op.DestSlash = strings.HasSuffix(dest, "/") || dest == "." || dest == "" || strings.HasSuffix(dest, "/.")
	op.DestDir = op.DestSlash || len(op.Sources)+len(op.Inline) > 1
	if !path.IsAbs(dest) {
		wd := st.Config.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}
	op.Dest = path.Clean(dest)
	if op.Chown, err = exp(chown); err != nil {
		return nil, st.errf(loc, "expanding --chown: %w", err)
	}
	if op.Chmod, err = exp(chmod); err != nil {
		return nil, st.errf(loc, "expanding --chmod: %w", err)
	}
	if op.Checksum, err = exp(checksum); err != nil {
		return nil, st.errf(loc, "expanding --checksum: %w", err)
	}
	for _, e := range excludes {
		v, err := exp(e)
		if err != nil {
			return nil, st.errf(loc, "expanding --exclude: %w", err)
		}
		op.Excludes = append(op.Excludes, v)
	}
	if from != "" {
		s, img, err := st.plan.FromStage(from)
		if err != nil {
			return nil, st.errf(loc, "expanding --from=%s: %w", from, err)
		}
		op.FromStage, op.FromImage = s, img
	}
	if op.Chmod != "" {
		if _, err := ParseChmod(op.Chmod); err != nil {
			return nil, st.errf(loc, "%s --chmod=%s: %w", name, op.Chmod, err)
		}
	}
	if parents {
		return nil, st.errf(loc, "COPY --parents (a labs feature) is not supported by build-push; copy each directory to its destination")
	}
	if !add && checksum != "" {
		return nil, st.errf(loc, "COPY has no --checksum; use ADD")
	}
	// The instruction as the cache sees it: expanded, flags included.
	var b strings.Builder
	b.WriteString(name)
	for _, f := range []struct{ k, v string }{{"from", from}, {"chown", op.Chown}, {"chmod", op.Chmod}, {"checksum", op.Checksum}} {
		if f.v != "" {
			fmt.Fprintf(&b, " --%s=%s", f.k, f.v)
		}
	}
	if link {
		b.WriteString(" --link")
	}
	if parents {
		b.WriteString(" --parents")
	}
	for _, e := range op.Excludes {
		fmt.Fprintf(&b, " --exclude=%s", e)
	}
	for _, s := range op.Sources {
		b.WriteString(" " + s)
	}
	for _, c := range op.Inline {
		fmt.Fprintf(&b, " <<%s(%q)", c.Path, c.Data)
	}
	b.WriteString(" " + op.Dest)
	if op.DestDir {
		b.WriteString("/")
	}
	op.Instruction = b.String()
	_ = text
	return op, nil
}

func lineOf(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// AddEmptyHistory records a filesystem instruction that makes no layer
// (WORKDIR /).
func (st *State) AddEmptyHistory(text string) {
	st.Config.History = append(st.Config.History, v1.History{CreatedBy: text, Comment: "hoist build-push", EmptyLayer: true})
}

// AddLayerHistory records a filesystem instruction in the image history.
func (st *State) AddLayerHistory(text string) {
	st.Config.History = append(st.Config.History, v1.History{CreatedBy: text, Comment: "hoist build-push"})
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func kvText(kvs instructions.KeyValuePairs) string {
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, kv.Key+"="+kv.Value)
	}
	return strings.Join(parts, " ")
}

func jsonList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// parsePorts turns an EXPOSE word (80, 80/udp, 8000-8002/tcp) into ports.
func parsePorts(s string) ([]string, error) {
	proto := "tcp"
	p, pr, ok := strings.Cut(s, "/")
	if ok {
		proto = strings.ToLower(pr)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, fmt.Errorf("invalid protocol %q: use tcp, udp or sctp", pr)
		}
	}
	if i := strings.LastIndex(p, ":"); i >= 0 {
		// ip:port forms are accepted by Docker for EXPOSE; the host part is dropped.
		p = p[i+1:]
	}
	lo, hi, isRange := strings.Cut(p, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", p)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid port range %q", p)
		}
	}
	var out []string
	for n := start; n <= end; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

var signals = map[string]bool{
	"ABRT": true, "ALRM": true, "BUS": true, "CHLD": true, "CONT": true, "FPE": true, "HUP": true, "ILL": true,
	"INT": true, "IO": true, "IOT": true, "KILL": true, "PIPE": true, "POLL": true, "PROF": true, "PWR": true,
	"QUIT": true, "SEGV": true, "STKFLT": true, "STOP": true, "SYS": true, "TERM": true, "TRAP": true,
	"TSTP": true, "TTIN": true, "TTOU": true, "URG": true, "USR1": true, "USR2": true, "VTALRM": true,
	"WINCH": true, "XCPU": true, "XFSZ": true,
}

func validSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return fmt.Errorf("signal number out of range 1-64")
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if signals[name] || strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return nil
	}
	return fmt.Errorf("unknown signal; use a name such as SIGTERM or a number")
}

// SortedKeys of a set, for stable output.
func SortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
