package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Options are the inputs of a build plan.
type Options struct {
	// BuildArgs are --build-arg values. A key with an empty value is kept.
	BuildArgs map[string]string
	// Target is the stage to build; empty means the last one.
	Target string
	// TargetPlatform and BuildPlatform feed FROM --platform and the
	// predefined TARGET*/BUILD* ARGs. Empty fields default to linux/amd64.
	TargetPlatform v1.Platform
	BuildPlatform  v1.Platform
}

// Plan is what a target needs: the stages in build order.
type Plan struct {
	File   *File
	Stages []*Stage
	Target *Stage
	opts   Options
	// global is the scope FROM lines and COPY --from see: meta ARGs and
	// the predefined platform ARGs.
	global  map[string]string
	used    map[string]bool
	byIndex map[int]*Stage
}

// Stage is one FROM section the target needs.
type Stage struct {
	Index int
	Name  string
	// Base is the image reference after ARG expansion; empty when the
	// stage starts from scratch or from another stage.
	Base      string
	Scratch   bool
	BaseStage *Stage
	Platform  v1.Platform
	Commands  []instructions.Command
	Location  []parser.Range
	// CopyFrom are the stages COPY --from reads.
	CopyFrom []*Stage
}

// Line is the line of the stage's FROM.
func (s *Stage) Line() int {
	if len(s.Location) == 0 {
		return 0
	}
	return s.Location[0].Start.Line
}

// Ref names the stage in messages: its name or its number.
func (s *Stage) Ref() string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprint(s.Index)
}

func defaultPlatform(p v1.Platform) v1.Platform {
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = "amd64"
	}
	return p
}

// FormatPlatform is os/arch[/variant].
func FormatPlatform(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform reads os/arch[/variant] with go-containerregistry's
// parser, requiring the architecture (an image platform, as in
// FROM --platform and the platforms input).
func ParsePlatform(s string) (v1.Platform, error) {
	s = strings.TrimSpace(s)
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], such as linux/amd64 or linux/arm64", s)
	}
	return *p, nil
}

// platformArgs are the predefined ARGs Docker sets for a platform pair.
func platformArgs(target, build v1.Platform) map[string]string {
	return map[string]string{
		"TARGETPLATFORM": FormatPlatform(target),
		"TARGETOS":       target.OS,
		"TARGETARCH":     target.Architecture,
		"TARGETVARIANT":  target.Variant,
		"BUILDPLATFORM":  FormatPlatform(build),
		"BUILDOS":        build.OS,
		"BUILDARCH":      build.Architecture,
		"BUILDVARIANT":   build.Variant,
	}
}

// proxyArgs may be passed as build args without an ARG, as Docker allows.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

type mapEnv map[string]string

func (m mapEnv) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m mapEnv) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// NewPlan resolves the stages opts.Target needs.
func NewPlan(f *File, opts Options) (*Plan, error) {
	opts.TargetPlatform = defaultPlatform(opts.TargetPlatform)
	opts.BuildPlatform = defaultPlatform(opts.BuildPlatform)
	p := &Plan{File: f, opts: opts, used: map[string]bool{}, byIndex: map[int]*Stage{}}
	p.global = platformArgs(opts.TargetPlatform, opts.BuildPlatform)
	lex := shell.NewLex(f.Escape)
	for _, meta := range f.MetaArgs {
		for _, kv := range meta.Args {
			if v, ok := opts.BuildArgs[kv.Key]; ok {
				p.global[kv.Key] = v
				p.used[kv.Key] = true
				continue
			}
			if kv.Value == nil {
				continue // declared without a value: keeps what it had (a predefined ARG keeps its value)
			}
			v, _, err := lex.ProcessWord(*kv.Value, mapEnv(p.global))
			if err != nil {
				return nil, errorAt(f.Name, meta.Location(), fmt.Errorf("expanding ARG %s: %w", kv.Key, err))
			}
			p.global[kv.Key] = v
		}
	}

	target := len(f.Stages) - 1
	if opts.Target != "" {
		i, ok := f.StageIndex(opts.Target)
		if !ok {
			return nil, fmt.Errorf("target %q: no such stage in %s; stages: %s", opts.Target, f.Name, strings.Join(f.stageNames(), ", "))
		}
		target = i
	}
	st, err := p.stage(target, map[int]bool{})
	if err != nil {
		return nil, err
	}
	p.Target = st
	for i := 0; i < len(f.Stages); i++ {
		if s, ok := p.byIndex[i]; ok {
			p.Stages = append(p.Stages, s)
		}
	}
	return p, nil
}

func (f *File) stageNames() []string {
	var names []string
	for i, s := range f.Stages {
		if s.Name != "" {
			names = append(names, s.Name)
		} else {
			names = append(names, fmt.Sprint(i))
		}
	}
	return names
}

// expandGlobal expands a word in the global scope (FROM, COPY --from).
func (p *Plan) expandGlobal(word string) (string, error) {
	lex := shell.NewLex(p.File.Escape)
	res, err := lex.ProcessWordWithMatches(word, mapEnv(p.global))
	if err != nil {
		return "", err
	}
	return res.Result, nil
}

// stage resolves stage i and, recursively, the stages it reads.
func (p *Plan) stage(i int, visiting map[int]bool) (*Stage, error) {
	if s, ok := p.byIndex[i]; ok {
		return s, nil
	}
	f := p.File
	src := f.Stages[i]
	if visiting[i] {
		return nil, errorAt(f.Name, src.Location, errors.New("stages depend on each other in a cycle"))
	}
	visiting[i] = true
	defer delete(visiting, i)

	s := &Stage{Index: i, Name: src.Name, Commands: src.Commands, Location: src.Location, Platform: p.opts.TargetPlatform}
	if src.Platform != "" {
		v, err := p.expandGlobal(src.Platform)
		if err != nil {
			return nil, errorAt(f.Name, src.Location, fmt.Errorf("expanding FROM --platform: %w", err))
		}
		plat, err := ParsePlatform(v)
		if err != nil {
			return nil, errorAt(f.Name, src.Location, fmt.Errorf("FROM --platform: %w", err))
		}
		s.Platform = plat
	}
	base, err := p.expandGlobal(src.BaseName)
	if err != nil {
		return nil, errorAt(f.Name, src.Location, fmt.Errorf("expanding FROM %s: %w", src.BaseName, err))
	}
	if base == "" {
		return nil, errorAt(f.Name, src.Location, fmt.Errorf("FROM %s expands to an empty image name: declare the ARG before FROM with a default or pass it with build-args", src.BaseName))
	}
	switch j, ok := f.StageIndex(base); {
	case strings.EqualFold(base, "scratch"):
		s.Scratch = true
	case ok && j < i && (f.Stages[j].Name != "" && strings.EqualFold(f.Stages[j].Name, base)):
		bs, err := p.stage(j, visiting)
		if err != nil {
			return nil, err
		}
		s.BaseStage = bs
		if src.Platform == "" {
			s.Platform = bs.Platform
		}
	default:
		s.Base = base
	}
	for _, cmd := range src.Commands {
		var froms []string
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				froms = append(froms, c.From)
			}
		case *instructions.RunCommand:
			// RUN --mount=from=<stage>: the values are expanded with the
			// global ARGs here; from= takes no variables anyway.
			if err := c.Expand(p.expandGlobal); err != nil {
				return nil, errorAt(f.Name, c.Location(), fmt.Errorf("RUN --mount: %w", err))
			}
			for _, m := range instructions.GetMounts(c) {
				if m.From != "" {
					froms = append(froms, m.From)
				}
			}
		}
		for _, from := range froms {
			dep, err := p.dependency(i, cmd, from, visiting)
			if err != nil {
				return nil, err
			}
			if dep != nil {
				s.CopyFrom = append(s.CopyFrom, dep)
			}
		}
	}
	p.byIndex[i] = s
	return s, nil
}

// dependency resolves a --from of stage i: an earlier stage, or nil for an
// image reference.
func (p *Plan) dependency(i int, cmd instructions.Command, rawFrom string, visiting map[int]bool) (*Stage, error) {
	f := p.File
	from, err := p.expandGlobal(rawFrom)
	if err != nil {
		return nil, errorAt(f.Name, cmd.Location(), fmt.Errorf("expanding --from=%s: %w", rawFrom, err))
	}
	j, ok := f.StageIndex(from)
	if !ok {
		return nil, nil // an image reference
	}
	flag := "COPY --from"
	if _, ok := cmd.(*instructions.RunCommand); ok {
		flag = "RUN --mount=from"
	}
	if j >= i {
		return nil, errorAt(f.Name, cmd.Location(), fmt.Errorf("%s=%s names this stage or a later one; only earlier stages can be used", flag, from))
	}
	return p.stage(j, visiting)
}

// FromStage resolves a COPY --from value: a stage of the plan, or an
// image reference (second result).
func (p *Plan) FromStage(from string) (*Stage, string, error) {
	v, err := p.expandGlobal(from)
	if err != nil {
		return nil, "", err
	}
	if j, ok := p.File.StageIndex(v); ok {
		if s, ok := p.byIndex[j]; ok {
			return s, "", nil
		}
	}
	return nil, v, nil
}

// UnusedBuildArgs are build args no ARG of the built stages declares.
func (p *Plan) UnusedBuildArgs() []string {
	var out []string
	for k := range p.opts.BuildArgs {
		if !p.used[k] && !proxyArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Hooks connect a plan to a builder.
type Hooks struct {
	// Base resolves an image a stage starts FROM (its config, for the
	// stage's platform); the builder remembers the image itself.
	Base func(ctx context.Context, s *Stage) (*v1.ConfigFile, error)
	// Op performs a filesystem operation and records its layer in
	// st.Config (RootFS.DiffIDs and History).
	Op func(ctx context.Context, st *State, op Op) error
	// Stage, when set, is called when a stage is complete.
	Stage func(ctx context.Context, st *State) error
}

// Run evaluates every stage of the plan in order, calling hooks for bases
// and filesystem operations, and returns the final state of each stage.
func (p *Plan) Run(ctx context.Context, h Hooks) (map[*Stage]*State, error) {
	states := map[*Stage]*State{}
	for _, s := range p.Stages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var base *v1.ConfigFile
		switch {
		case s.BaseStage != nil:
			base = &states[s.BaseStage].Config
		case !s.Scratch:
			var err error
			if base, err = h.Base(ctx, s); err != nil {
				return nil, err
			}
		}
		st := p.NewState(s, base)
		if s.BaseStage != nil {
			st.FromStage(states[s.BaseStage])
		}
		triggers, err := st.Triggers(base)
		if err != nil {
			return nil, err
		}
		for _, cmd := range append(triggers, s.Commands...) {
			op, err := st.Apply(cmd)
			if err != nil {
				return nil, err
			}
			if op == nil {
				continue
			}
			if err := h.Op(ctx, st, op); err != nil {
				return nil, err
			}
		}
		if h.Stage != nil {
			if err := h.Stage(ctx, st); err != nil {
				return nil, err
			}
		}
		states[s] = st
	}
	return states, nil
}

// Images are the image references the plan reads: FROM bases and
// COPY --from images, expanded with the global ARGs.
func (p *Plan) Images() []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range p.Stages {
		add(s.Base)
		for _, cmd := range s.Commands {
			if c, ok := cmd.(*instructions.CopyCommand); ok && c.From != "" {
				if st, img, err := p.FromStage(c.From); err == nil && st == nil {
					add(img)
				}
			}
		}
	}
	return out
}
