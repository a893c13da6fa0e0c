package gate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/need"
)

// On-no-base policies: what the changes filter does when there is nothing
// to compare with (a tag or scheduled pipeline, a shallow clone).
const (
	OnNoBaseRun  = "run"
	OnNoBaseSkip = "skip"
)

// BaseAuto picks the base from the pipeline: the PR/MR base, else the
// commit a push moved the branch from, else the default branch.
const BaseAuto = "auto"

// Changes is the changes filter's decision.
type Changes struct {
	// Run is false when the gate is skipped.
	Run bool
	// Reason says why, for the log and the summary.
	Reason string
	// Base is the commit compared with, "" without one.
	Base string
	// Matched are changed files under the paths (at most a few, for the log).
	Matched []string
	// Changed is how many files changed in all.
	Changed int
	// NoBase is why there was nothing to compare with, when that decided
	// (it names what is missing: more history).
	NoBase error
}

// errNoBase is a base that cannot be used; the on-no-base policy decides.
type errNoBase struct{ why string }

func (e *errNoBase) Error() string { return e.why }

// Need names what is missing: more git history.
func (e *errNoBase) Need() (need.Kind, string) { return need.History, "" }

// checkChanges decides whether the gate runs: with no paths it always does;
// otherwise only when a file matching one of them changed between the base
// and HEAD of the repository at dir.
func checkChanges(ctx context.Context, dir string, paths []string, base, onNoBase string, g gitmeta.Context) (Changes, error) {
	if len(paths) == 0 {
		return Changes{Run: true, Reason: "no paths filter"}, nil
	}
	for _, p := range paths {
		if !doublestar.ValidatePattern(p) {
			return Changes{}, fmt.Errorf("paths: %q is not a valid glob; use doublestar syntax such as src/** or **/*.py", p)
		}
	}
	files, baseSHA, err := changedFiles(ctx, dir, base, g)
	var nb *errNoBase
	if errors.As(err, &nb) {
		if onNoBase == OnNoBaseSkip {
			return Changes{Run: false, Reason: nb.why + "; on-no-base is skip", NoBase: nb}, nil
		}
		return Changes{Run: true, Reason: nb.why + "; on-no-base is run, as GitLab's rules:changes does", NoBase: nb}, nil
	}
	if err != nil {
		return Changes{}, err
	}
	c := Changes{Base: baseSHA, Changed: len(files)}
	for _, f := range files {
		if pathsMatch(paths, f) {
			c.Matched = append(c.Matched, f)
		}
	}
	short := baseSHA
	if len(short) > 12 {
		short = short[:12]
	}
	if len(c.Matched) == 0 {
		c.Reason = fmt.Sprintf("none of the %d files changed since %s matches %s", len(files), short, strings.Join(paths, ", "))
		return c, nil
	}
	c.Run = true
	c.Reason = fmt.Sprintf("%d of the %d files changed since %s match %s", len(c.Matched), len(files), short, strings.Join(paths, ", "))
	if len(c.Matched) > 10 {
		c.Matched = c.Matched[:10]
	}
	return c, nil
}

// changedFiles lists the files that differ between the base and HEAD
// (both sides of a rename), sorted.
func changedFiles(ctx context.Context, dir, base string, g gitmeta.Context) ([]string, string, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, "", &errNoBase{why: fmt.Sprintf("%s is not a git repository (%v)", dir, err)}
	}
	headHash, err := repo.ResolveRevision(plumbing.Revision("HEAD"))
	if err != nil {
		return nil, "", &errNoBase{why: fmt.Sprintf("the repository has no HEAD commit (%v)", err)}
	}
	head, err := repo.CommitObject(*headHash)
	if err != nil {
		return nil, "", fmt.Errorf("reading HEAD %s: %w", headHash, err)
	}
	baseCommit, err := resolveBase(repo, head, base, g)
	if err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	baseTree, err := baseCommit.Tree()
	if err != nil {
		return nil, "", fmt.Errorf("reading the tree of %s: %w", baseCommit.Hash, err)
	}
	headTree, err := head.Tree()
	if err != nil {
		return nil, "", fmt.Errorf("reading the tree of HEAD: %w", err)
	}
	changes, err := object.DiffTreeWithOptions(ctx, baseTree, headTree, &object.DiffTreeOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("comparing %s with HEAD: %w", baseCommit.Hash, err)
	}
	set := map[string]bool{}
	for _, ch := range changes {
		if ch.From.Name != "" {
			set[ch.From.Name] = true
		}
		if ch.To.Name != "" {
			set[ch.To.Name] = true
		}
	}
	files := make([]string, 0, len(set))
	for f := range set {
		files = append(files, f)
	}
	sort.Strings(files)
	return files, baseCommit.Hash.String(), nil
}

// resolveBase finds the commit to compare HEAD with. A branch (the PR/MR
// target, the default branch) is compared from its merge base with HEAD,
// so that commits on the target since the branch forked do not count.
func resolveBase(repo *git.Repository, head *object.Commit, base string, g gitmeta.Context) (*object.Commit, error) {
	type candidate struct {
		rev       string
		mergeBase bool
		what      string
	}
	var cands []candidate
	if base != "" && base != BaseAuto {
		cands = append(cands, candidate{base, true, "base " + base}, candidate{"origin/" + base, true, "base origin/" + base})
	} else {
		switch g.Event {
		case gitmeta.EventPullRequest:
			if g.BaseSHA != "" {
				cands = append(cands, candidate{g.BaseSHA, true, "the pull/merge request's base " + g.BaseSHA})
			}
			if g.BaseRef != "" {
				cands = append(cands, candidate{"origin/" + g.BaseRef, true, "the target branch origin/" + g.BaseRef}, candidate{g.BaseRef, true, "the target branch " + g.BaseRef})
			}
		case gitmeta.EventPush:
			if g.BeforeSHA != "" {
				cands = append(cands, candidate{g.BeforeSHA, false, "the push's previous commit " + g.BeforeSHA})
			}
			if g.DefaultBranch != "" && g.Branch != g.DefaultBranch {
				cands = append(cands, candidate{"origin/" + g.DefaultBranch, true, "the default branch origin/" + g.DefaultBranch}, candidate{g.DefaultBranch, true, "the default branch " + g.DefaultBranch})
			}
		}
		if len(cands) == 0 {
			ev := string(g.Event)
			if ev == "" {
				ev = "unknown"
			}
			return nil, &errNoBase{why: fmt.Sprintf("a %s pipeline has no base to compare with", ev)}
		}
	}
	var tried []string
	for _, c := range cands {
		h, err := repo.ResolveRevision(plumbing.Revision(c.rev))
		if err != nil {
			tried = append(tried, c.what)
			continue
		}
		commit, err := repo.CommitObject(*h)
		if err != nil {
			tried = append(tried, c.what+" (not in the clone)")
			continue
		}
		if !c.mergeBase {
			return commit, nil
		}
		mb, err := head.MergeBase(commit)
		if err != nil || len(mb) == 0 {
			tried = append(tried, c.what+" (no merge base with HEAD: a shallow clone?)")
			continue
		}
		return mb[0], nil
	}
	return nil, &errNoBase{why: fmt.Sprintf("cannot find %s in the clone; fetch more history", strings.Join(tried, ", nor "))}
}

// pathsMatch reports whether file is selected by paths, read as GitHub
// reads `on.push.paths`: a pattern starting with `!` excludes what it
// matches, and the last pattern that matches decides (`**`, `!docs/**`
// selects every file but the docs). With no positive pattern before a
// negative one, nothing is selected by it.
func pathsMatch(paths []string, file string) bool {
	selected := false
	for _, p := range paths {
		neg := strings.HasPrefix(p, "!")
		if ok, _ := doublestar.Match(strings.TrimPrefix(p, "!"), file); ok {
			selected = !neg
		}
	}
	return selected
}
