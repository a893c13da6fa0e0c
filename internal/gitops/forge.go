package gitops

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v74/github"
	"github.com/hoist-ci/hoist/internal/redact"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// PullRequest is an open, merged or closed pull (merge) request.
type PullRequest struct {
	Number int
	URL    string
	// State is open, merged or closed.
	State string
}

// PullRequestSpec is what a pull request should say.
type PullRequestSpec struct {
	Title, Body string
	// Head is the branch with the change, Base the branch it goes into.
	Head, Base string
	Labels     []string
}

// Forge opens and updates pull requests on GitHub or merge requests on GitLab.
type Forge interface {
	// Find returns the newest pull request from head into base, any state,
	// or nil.
	Find(ctx context.Context, head, base string) (*PullRequest, error)
	Create(ctx context.Context, s PullRequestSpec) (*PullRequest, error)
	Update(ctx context.Context, number int, s PullRequestSpec) (*PullRequest, error)
}

// ForgeOptions select and reach the forge.
type ForgeOptions struct {
	// Kind is github or gitlab; empty guesses from the repository URL.
	Kind string
	// APIURL is the API root (https://api.github.com/, https://gitlab.com/api/v4);
	// empty derives it from the repository URL.
	APIURL string
	// RepositoryURL is the https URL of the repository (owner/name or the
	// GitLab project path is taken from it).
	RepositoryURL string
	Token         string
	HTTPClient    *http.Client
}

// NewForge returns the GitHub or GitLab client for the repository. Its
// errors are redacted: the forge's answer (which the clients copy into
// their errors) may echo the token.
func NewForge(o ForgeOptions) (Forge, error) {
	f, err := newForge(o)
	if err != nil {
		return nil, redact.Error(err, o.Token)
	}
	return redactingForge{f: f, token: o.Token}, nil
}

// redactingForge redacts the errors of a Forge, its token included.
type redactingForge struct {
	f     Forge
	token string
}

func (r redactingForge) Find(ctx context.Context, head, base string) (*PullRequest, error) {
	pr, err := r.f.Find(ctx, head, base)
	return pr, redact.Error(err, r.token)
}

func (r redactingForge) Create(ctx context.Context, s PullRequestSpec) (*PullRequest, error) {
	pr, err := r.f.Create(ctx, s)
	return pr, redact.Error(err, r.token)
}

func (r redactingForge) Update(ctx context.Context, number int, s PullRequestSpec) (*PullRequest, error) {
	pr, err := r.f.Update(ctx, number, s)
	return pr, redact.Error(err, r.token)
}

func newForge(o ForgeOptions) (Forge, error) {
	u, err := url.Parse(o.RepositoryURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("pull-request mode needs an https repository URL, got %s", redact.URL(o.RepositoryURL))
	}
	path := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	kind := o.Kind
	if kind == "" || kind == "auto" {
		kind = "gitlab"
		if u.Host == "github.com" || strings.Contains(u.Host, "github") {
			kind = "github"
		}
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	switch kind {
	case "github":
		owner, repo, ok := strings.Cut(path, "/")
		if !ok || strings.Contains(repo, "/") {
			return nil, fmt.Errorf("repository %s: want https://host/owner/name for GitHub", redact.URL(o.RepositoryURL))
		}
		c := github.NewClient(hc).WithAuthToken(o.Token)
		api := o.APIURL
		if api == "" && u.Host != "github.com" {
			api = u.Scheme + "://" + u.Host + "/api/v3/"
		}
		if api != "" {
			if !strings.HasSuffix(api, "/") {
				api += "/"
			}
			base, err := url.Parse(api)
			if err != nil {
				return nil, fmt.Errorf("api-url %q: %w", api, err)
			}
			c.BaseURL = base
		}
		return &gitHub{c: c, owner: owner, repo: repo}, nil
	case "gitlab":
		api := o.APIURL
		if api == "" {
			api = u.Scheme + "://" + u.Host + "/api/v4"
		}
		c, err := gitlab.NewClient(o.Token, gitlab.WithBaseURL(api), gitlab.WithHTTPClient(hc), gitlab.WithoutRetries())
		if err != nil {
			return nil, fmt.Errorf("gitlab client for %s: %w", api, err)
		}
		return &gitLab{c: c, project: path}, nil
	}
	return nil, fmt.Errorf("forge %q: want github or gitlab", kind)
}

type gitHub struct {
	c           *github.Client
	owner, repo string
}

func (g *gitHub) Find(ctx context.Context, head, base string) (*PullRequest, error) {
	prs, _, err := g.c.PullRequests.List(ctx, g.owner, g.repo, &github.PullRequestListOptions{
		State: "all", Head: g.owner + ":" + head, Base: base, Sort: "created", Direction: "desc",
		ListOptions: github.ListOptions{PerPage: 10},
	})
	if err != nil {
		return nil, fmt.Errorf("listing pull requests of %s/%s from %s: %w", g.owner, g.repo, head, err)
	}
	if len(prs) == 0 {
		return nil, nil
	}
	// An open one wins over older merged or closed ones.
	for _, pr := range prs {
		if pr.GetState() == "open" {
			return ghPR(pr), nil
		}
	}
	return ghPR(prs[0]), nil
}

func ghPR(pr *github.PullRequest) *PullRequest {
	state := pr.GetState()
	if pr.MergedAt != nil || pr.GetMerged() {
		state = "merged"
	}
	return &PullRequest{Number: pr.GetNumber(), URL: pr.GetHTMLURL(), State: state}
}

func (g *gitHub) Create(ctx context.Context, s PullRequestSpec) (*PullRequest, error) {
	pr, _, err := g.c.PullRequests.Create(ctx, g.owner, g.repo, &github.NewPullRequest{
		Title: github.Ptr(s.Title), Body: github.Ptr(s.Body), Head: github.Ptr(s.Head), Base: github.Ptr(s.Base),
	})
	if err != nil {
		return nil, fmt.Errorf("opening a pull request on %s/%s: %w", g.owner, g.repo, err)
	}
	if len(s.Labels) > 0 {
		if _, _, err := g.c.Issues.AddLabelsToIssue(ctx, g.owner, g.repo, pr.GetNumber(), s.Labels); err != nil {
			return nil, fmt.Errorf("labelling pull request #%d: %w", pr.GetNumber(), err)
		}
	}
	return ghPR(pr), nil
}

func (g *gitHub) Update(ctx context.Context, number int, s PullRequestSpec) (*PullRequest, error) {
	pr, _, err := g.c.PullRequests.Edit(ctx, g.owner, g.repo, number, &github.PullRequest{Title: github.Ptr(s.Title), Body: github.Ptr(s.Body)})
	if err != nil {
		return nil, fmt.Errorf("updating pull request #%d on %s/%s: %w", number, g.owner, g.repo, err)
	}
	if len(s.Labels) > 0 {
		if _, _, err := g.c.Issues.AddLabelsToIssue(ctx, g.owner, g.repo, number, s.Labels); err != nil {
			return nil, fmt.Errorf("labelling pull request #%d: %w", number, err)
		}
	}
	return ghPR(pr), nil
}

type gitLab struct {
	c       *gitlab.Client
	project string
}

func (g *gitLab) Find(ctx context.Context, head, base string) (*PullRequest, error) {
	mrs, _, err := g.c.MergeRequests.ListProjectMergeRequests(g.project, &gitlab.ListProjectMergeRequestsOptions{
		SourceBranch: gitlab.Ptr(head), TargetBranch: gitlab.Ptr(base),
		OrderBy: gitlab.Ptr("created_at"), Sort: gitlab.Ptr("desc"),
		ListOptions: gitlab.ListOptions{PerPage: 10},
	}, gitlab.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing merge requests of %s from %s: %w", g.project, head, err)
	}
	if len(mrs) == 0 {
		return nil, nil
	}
	for _, mr := range mrs {
		if mr.State == "opened" {
			return glMR(mr.IID, mr.WebURL, mr.State), nil
		}
	}
	return glMR(mrs[0].IID, mrs[0].WebURL, mrs[0].State), nil
}

func glMR(iid int64, web, state string) *PullRequest {
	if state == "opened" {
		state = "open"
	}
	return &PullRequest{Number: int(iid), URL: web, State: state}
}

func (g *gitLab) Create(ctx context.Context, s PullRequestSpec) (*PullRequest, error) {
	opt := &gitlab.CreateMergeRequestOptions{
		Title: gitlab.Ptr(s.Title), Description: gitlab.Ptr(s.Body),
		SourceBranch: gitlab.Ptr(s.Head), TargetBranch: gitlab.Ptr(s.Base),
		RemoveSourceBranch: gitlab.Ptr(true),
	}
	if len(s.Labels) > 0 {
		l := gitlab.LabelOptions(s.Labels)
		opt.Labels = &l
	}
	mr, _, err := g.c.MergeRequests.CreateMergeRequest(g.project, opt, gitlab.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("opening a merge request on %s: %w", g.project, err)
	}
	return glMR(mr.IID, mr.WebURL, mr.State), nil
}

func (g *gitLab) Update(ctx context.Context, number int, s PullRequestSpec) (*PullRequest, error) {
	opt := &gitlab.UpdateMergeRequestOptions{Title: gitlab.Ptr(s.Title), Description: gitlab.Ptr(s.Body)}
	if len(s.Labels) > 0 {
		l := gitlab.LabelOptions(s.Labels)
		opt.AddLabels = &l
	}
	mr, _, err := g.c.MergeRequests.UpdateMergeRequest(g.project, int64(number), opt, gitlab.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("updating merge request !%d on %s: %w", number, g.project, err)
	}
	return glMR(mr.IID, mr.WebURL, mr.State), nil
}
