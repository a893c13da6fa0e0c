package ci

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sethvargo/go-githubactions"

	"github.com/hoist-ci/hoist/internal/gitmeta"
)

// readGit fills j.Git for the platform, then applies short-sha-length.
func (j *Job) readGit(ctx context.Context) error {
	switch j.Platform {
	case PlatformGitHub:
		j.Git = j.githubGit()
	case PlatformGitLab:
		j.Git = gitlabGit(j.env.Getenv)
	case PlatformAzure:
		j.Git = j.azureGit()
	default:
		j.Git = j.localGit(ctx)
	}
	if in, ok := j.Tool.Input("short-sha-length"); ok && j.inputs[in.Name].set() {
		n, err := j.Int(in.Name)
		if err != nil {
			return err
		}
		j.Git.ShortSHALength = n
	}
	g := j.Git
	var attrs []any
	for _, kv := range [][2]string{
		{"event", string(g.Event)}, {"ref", g.Ref}, {"branch", g.Branch}, {"tag", g.Tag}, {"sha", g.SHA},
		{"default-branch", g.DefaultBranch}, {"base", g.BaseRef}, {"repository", g.RepositoryURL},
	} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	if g.PullRequest != 0 {
		attrs = append(attrs, "pull-request", g.PullRequest)
	}
	j.Log.Debug("git context", attrs...)
	return nil
}

// githubGit reads the GitHub context: GITHUB_* variables and the event
// payload at GITHUB_EVENT_PATH.
func (j *Job) githubGit() gitmeta.Context {
	gc, err := j.gh.Context()
	if gc == nil {
		// The event payload could not be read: keep the variables.
		j.Log.Warn("reading the GitHub event payload", "path", j.env.Getenv("GITHUB_EVENT_PATH"), "error", err)
		noEvent := githubactions.New(githubactions.WithGetenv(func(k string) string {
			if k == "GITHUB_EVENT_PATH" {
				return ""
			}
			return j.env.Getenv(k)
		}))
		gc, _ = noEvent.Context()
	}
	ev := gc.Event
	c := gitmeta.Context{Ref: gc.Ref, SHA: gc.SHA, ShortSHALength: 7}
	if gc.Repository != "" {
		c.RepositoryURL = strings.TrimRight(gc.ServerURL, "/") + "/" + gc.Repository
	}
	c.DefaultBranch = eventString(ev, "repository", "default_branch")
	switch {
	case strings.HasPrefix(gc.Ref, "refs/tags/"):
		c.Tag = strings.TrimPrefix(gc.Ref, "refs/tags/")
	case strings.HasPrefix(gc.Ref, "refs/heads/"):
		c.Branch = strings.TrimPrefix(gc.Ref, "refs/heads/")
	case gc.Ref == "" && gc.RefType == "tag":
		c.Tag, c.Ref = gc.RefName, "refs/tags/"+gc.RefName
	case gc.Ref == "" && gc.RefType == "branch":
		c.Branch, c.Ref = gc.RefName, "refs/heads/"+gc.RefName
	}
	c.BeforeSHA = realSHA(eventString(ev, "before"))

	switch gc.EventName {
	case "push":
		c.Event = gitmeta.EventPush
		if c.Tag != "" {
			c.Event = gitmeta.EventTag
		}
	case "pull_request", "pull_request_target":
		c.Event = gitmeta.EventPullRequest
		c.Tag = ""
		c.Branch = cmp.Or(gc.HeadRef, eventString(ev, "pull_request", "head", "ref"))
		c.BaseRef = cmp.Or(gc.BaseRef, eventString(ev, "pull_request", "base", "ref"))
		c.BaseSHA = eventString(ev, "pull_request", "base", "sha")
		c.PullRequest = eventInt(ev, "pull_request", "number")
		if c.PullRequest == 0 {
			c.PullRequest = pullFromRef(gc.Ref)
		}
		if gc.EventName == "pull_request_target" {
			// GITHUB_SHA is the base branch's last commit here: an image
			// tagged with it would collide with that branch's own.
			if head := eventString(ev, "pull_request", "head", "sha"); head != "" {
				c.SHA = head
			}
		}
	case "schedule":
		c.Event = gitmeta.EventSchedule
		if c.DefaultBranch == "" {
			c.DefaultBranch = c.Branch // schedules run on the default branch
		}
	case "workflow_dispatch":
		c.Event = gitmeta.EventManual
	case "release":
		c.Event = gitmeta.EventOther
		if c.Tag != "" {
			c.Event = gitmeta.EventTag
		}
	default:
		c.Event = gitmeta.EventOther
	}
	return c
}

func eventValue(ev map[string]any, path ...string) any {
	var cur any = ev
	for _, key := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[key]
	}
	return cur
}

func eventString(ev map[string]any, path ...string) string {
	s, _ := eventValue(ev, path...).(string)
	return s
}

func eventInt(ev map[string]any, path ...string) int {
	switch v := eventValue(ev, path...).(type) {
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

// pullFromRef reads N from refs/pull/N/merge.
func pullFromRef(ref string) int {
	rest, ok := strings.CutPrefix(ref, "refs/pull/")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.SplitN(rest, "/", 2)[0])
	return n
}

// realSHA drops the all-zero SHA both platforms use for "none".
func realSHA(s string) string {
	if strings.Trim(s, "0") == "" {
		return ""
	}
	return s
}

// gitlabGit reads the GitLab context from the predefined CI_* variables.
func gitlabGit(getenv func(string) string) gitmeta.Context {
	c := gitmeta.Context{
		SHA:            getenv("CI_COMMIT_SHA"),
		ShortSHALength: 8,
		DefaultBranch:  getenv("CI_DEFAULT_BRANCH"),
		BeforeSHA:      realSHA(getenv("CI_COMMIT_BEFORE_SHA")),
		RepositoryURL:  getenv("CI_PROJECT_URL"),
	}
	source := getenv("CI_PIPELINE_SOURCE")
	switch {
	case getenv("CI_COMMIT_TAG") != "":
		c.Event = gitmeta.EventTag
		c.Tag = getenv("CI_COMMIT_TAG")
		c.Ref = "refs/tags/" + c.Tag
		return c
	case source == "merge_request_event":
		c.Event = gitmeta.EventPullRequest
		c.PullRequest, _ = strconv.Atoi(getenv("CI_MERGE_REQUEST_IID"))
		c.Branch = cmp.Or(getenv("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"), getenv("CI_COMMIT_REF_NAME"))
		c.BaseRef = getenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
		c.BaseSHA = getenv("CI_MERGE_REQUEST_DIFF_BASE_SHA")
		c.Ref = "refs/merge-requests/" + getenv("CI_MERGE_REQUEST_IID") + "/head"
		return c
	case source == "external_pull_request_event":
		c.Event = gitmeta.EventPullRequest
		c.PullRequest, _ = strconv.Atoi(getenv("CI_EXTERNAL_PULL_REQUEST_IID"))
		c.Branch = getenv("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME")
		c.BaseRef = getenv("CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME")
		c.BaseSHA = getenv("CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_SHA")
		c.Ref = "refs/heads/" + c.Branch
		return c
	}
	c.Branch = cmp.Or(getenv("CI_COMMIT_BRANCH"), getenv("CI_COMMIT_REF_NAME"))
	if c.Branch != "" {
		c.Ref = "refs/heads/" + c.Branch
	}
	switch source {
	case "push":
		c.Event = gitmeta.EventPush
	case "schedule":
		c.Event = gitmeta.EventSchedule
	case "web", "api", "trigger":
		c.Event = gitmeta.EventManual
	default:
		c.Event = gitmeta.EventOther
	}
	return c
}

// localGit reads the repository around Env.Dir with go-git. No repository
// is not an error: the context stays empty.
func (j *Job) localGit(ctx context.Context) gitmeta.Context {
	c := gitmeta.Context{ShortSHALength: 7}
	if ctx.Err() != nil {
		return c
	}
	dir := j.env.Dir
	if dir == "" {
		dir = "."
	}
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		j.Log.Debug("no git repository: the git context is empty", "dir", dir, "error", err)
		return c
	}
	c.DefaultBranch = localDefaultBranch(repo)
	if remote, err := repo.Remote("origin"); err == nil && len(remote.Config().URLs) > 0 {
		c.RepositoryURL = WebURL(remote.Config().URLs[0])
	}
	head, err := repo.Head()
	if err != nil {
		j.Log.Debug("the git repository has no HEAD commit", "dir", dir, "error", err)
		return c
	}
	c.SHA = head.Hash().String()
	if tag := tagAt(repo, head.Hash()); tag != "" {
		c.Event, c.Tag, c.Ref = gitmeta.EventTag, tag, "refs/tags/"+tag
		return c
	}
	c.Event = gitmeta.EventPush
	if head.Name().IsBranch() {
		c.Branch = head.Name().Short()
		c.Ref = head.Name().String()
	}
	return c
}

// localDefaultBranch: origin's HEAD, else main or master when present.
func localDefaultBranch(repo *git.Repository) string {
	if ref, err := repo.Reference(plumbing.NewRemoteHEADReferenceName("origin"), false); err == nil {
		if ref.Type() == plumbing.SymbolicReference {
			return strings.TrimPrefix(ref.Target().String(), "refs/remotes/origin/")
		}
	}
	for _, b := range []string{"main", "master"} {
		if _, err := repo.Reference(plumbing.NewBranchReferenceName(b), false); err == nil {
			return b
		}
	}
	return ""
}

// tagAt returns the tag pointing at commit: the highest semver among them,
// else the lexically last; "" when none does.
func tagAt(repo *git.Repository, commit plumbing.Hash) string {
	iter, err := repo.Tags()
	if err != nil {
		return ""
	}
	var names []string
	_ = iter.ForEach(func(ref *plumbing.Reference) error {
		h := ref.Hash()
		if tag, err := repo.TagObject(h); err == nil {
			c, err := tag.Commit()
			if err != nil {
				return nil
			}
			h = c.Hash
		} else if !errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil
		}
		if h == commit {
			names = append(names, ref.Name().Short())
		}
		return nil
	})
	return pickTag(names)
}

// pickTag chooses among the tags of one commit.
func pickTag(names []string) string {
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	best := ""
	for _, n := range names {
		v, ok := gitmeta.ParseVersion(n)
		if !ok {
			continue
		}
		if best == "" {
			best = n
			continue
		}
		bv, _ := gitmeta.ParseVersion(best)
		if !v.LessThan(bv) {
			best = n
		}
	}
	if best != "" {
		return best
	}
	return names[len(names)-1]
}

// WebURL turns a git remote URL into the repository's web address:
// git@host:o/r.git and ssh://git@host:22/o/r.git become https://host/o/r;
// credentials in an https URL are dropped. A local path gives "".
func WebURL(remote string) string {
	remote = strings.TrimSpace(remote)
	var host, path, scheme string
	if u, err := url.Parse(remote); err == nil && u.Scheme != "" && u.Host != "" {
		switch u.Scheme {
		case "http", "https":
			scheme, host = u.Scheme, u.Host
		case "ssh", "git", "git+ssh", "ssh+git":
			scheme, host = "https", u.Hostname()
		default:
			return ""
		}
		path = u.Path
	} else if i := strings.Index(remote, ":"); i > 0 && !strings.Contains(remote[:i], "/") && !strings.Contains(remote, "://") {
		// scp-like: [user@]host:path
		host = remote[:i]
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		scheme, path = "https", "/"+strings.TrimPrefix(remote[i+1:], "/")
	} else {
		return ""
	}
	path = strings.TrimSuffix(strings.TrimRight(path, "/"), ".git")
	if host == "" || path == "" {
		return ""
	}
	return scheme + "://" + host + path
}
