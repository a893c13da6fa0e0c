package ci

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-git/go-git/v5"

	"github.com/hoist-ci/hoist/internal/gitmeta"
)

// Azure Pipelines knowledge: logging commands (##vso[area.event k=v;]data),
// formatting commands (##[group]), and the variables the agent sets.
//
// The grammar is the agent's own (azure-pipelines-agent
// src/Microsoft.VisualStudio.Services.Agent/Command.cs and
// src/Agent.Sdk/CommandStringConvertor.cs): the agent finds "##vso[" anywhere
// in a line, takes the command up to the first "]", splits properties on ";"
// and each on the first "=", and unescapes "%3B" → ";", "%0D" → CR, "%0A" →
// LF, "%5D" → "]" and then "%AZP25" → "%" (DECODE_PERCENTS, on by default) in
// property values and in the data. The escaping here is the inverse, the
// same as azure-pipelines-task-lib's node/taskcommand.ts: the data escapes
// "%", CR and LF; a property value also "]" and ";".

// azureEscapeData escapes a logging command's data (what follows "]").
func azureEscapeData(s string) string {
	return strings.NewReplacer("%", "%AZP25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// azureEscapeProperty escapes a logging command's property value.
func azureEscapeProperty(s string) string {
	return strings.NewReplacer("%", "%AZP25", "\r", "%0D", "\n", "%0A", "]", "%5D", ";", "%3B").Replace(s)
}

// azureCommand renders one logging command line (without its newline):
// properties in the order given, empty values left out, each followed by
// ";" as the task library writes them.
func azureCommand(command string, props [][2]string, data string) string {
	var b strings.Builder
	b.WriteString("##vso[")
	b.WriteString(command)
	first := true
	for _, p := range props {
		if p[1] == "" {
			continue
		}
		if first {
			b.WriteByte(' ')
			first = false
		}
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(azureEscapeProperty(p[1]))
		b.WriteByte(';')
	}
	b.WriteByte(']')
	b.WriteString(azureEscapeData(data))
	return b.String()
}

// azureDefuse keeps text written to the log from being read as a command
// by the agent: in a line holding "##vso[" (anywhere) or starting with "##["
// — compared as the agent compares, case aside and ignoring invisible
// characters — every "#" becomes a fullwidth number sign "＃". The agent's
// search is .NET's culture-aware string.IndexOf, which skips characters the
// collation ignores (zero-width spaces, most control and format
// characters), so inserting such a character would not break the pattern;
// a visible, different character does.
func azureDefuse(s string) string {
	if !strings.Contains(s, "#") {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		sk := strings.ToLower(strings.Map(func(r rune) rune {
			if r != '\t' && (unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r)) {
				return -1
			}
			return r
		}, l))
		if strings.Contains(sk, "##vso[") || strings.HasPrefix(strings.TrimLeft(sk, " \t"), "##[") {
			lines[i] = strings.ReplaceAll(l, "#", "＃")
		}
	}
	return strings.Join(lines, "\n")
}

// azureCommandLine writes a logging command on a line of its own, every
// secret redacted (the masks know each secret's escaped forms too).
func (j *Job) azureCommandLine(command string, props [][2]string, data string) {
	_, _ = io.WriteString(j.logs.raw(), j.masks.redact(azureCommand(command, props, data))+"\n")
}

// azureSetSecret registers a secret with the agent, which masks it in the
// log from then on: the only command that carries a secret.
func (j *Job) azureSetSecret(secret string) {
	_, _ = io.WriteString(j.logs.raw(), azureCommand("task.setsecret", nil, secret)+"\n")
}

// azureSetOutput sets an output variable: $(<step>.<name>) later in the job,
// dependencies.<job>.outputs['<step>.<name>'] in later jobs and
// stageDependencies.<stage>.<job>.outputs['<step>.<name>'] in later stages.
// The value is already redacted.
func (j *Job) azureSetOutput(name, value string) {
	j.azureCommandLine("task.setvariable", [][2]string{{"variable", name}, {"isOutput", "true"}}, value)
}

// azureIssue logs an error or a warning as an issue of the step (shown in
// the run's summary), with its file, line and column when known.
func (j *Job) azureIssue(level string, a Annotation) {
	msg := a.Message
	if a.Title != "" {
		msg = a.Title + ": " + msg
	}
	props := [][2]string{{"type", level}, {"sourcepath", a.File}}
	if a.File != "" && a.Line > 0 {
		props = append(props, [2]string{"linenumber", strconv.Itoa(a.Line)})
		if a.Col > 0 {
			props = append(props, [2]string{"columnnumber", strconv.Itoa(a.Col)})
		}
	}
	j.azureCommandLine("task.logissue", props, msg)
}

// AzureIssuesPerLevel is how many errors, and how many warnings, the agent
// keeps as issues of one step (azure-pipelines-agent ExecutionContext
// _maxIssueCount); the rest are only counted and logged.
const AzureIssuesPerLevel = 10

// azureSummary writes markdown to a file in the agent's temporary directory
// and uploads it as a summary of the run (its name is the tab's title).
func (j *Job) azureSummary(markdown string) error {
	dir := j.env.Getenv("AGENT_TEMPDIRECTORY")
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	var f *os.File
	var err error
	for n := 1; n < 100; n++ {
		name := "hoist-" + j.Tool.Name + ".md"
		if n > 1 {
			name = fmt.Sprintf("hoist-%s-%d.md", j.Tool.Name, n)
		}
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("writing the summary in %s: %w", dir, err)
	}
	_, werr := f.WriteString(markdown)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("writing the summary %s: %w", f.Name(), err)
	}
	j.azureCommandLine("task.uploadsummary", nil, f.Name())
	return nil
}

// Reports are report files a tool wrote, to publish where the platform
// shows them. Paths are relative to the workspace or absolute; empty
// fields are skipped.
type Reports struct {
	// JUnit is a JUnit XML test report.
	JUnit string
	// Cobertura is a Cobertura XML coverage report.
	Cobertura string
	// Title names the test run.
	Title string
}

// PublishReports publishes test results and coverage natively: on Azure
// Pipelines with ##vso[results.publish type=JUnit] (the run's Tests tab) and
// ##vso[codecoverage.publish codecoveragetool=Cobertura] (its Code Coverage
// tab). GitLab reads its reports from artifacts:reports and GitHub has no
// such tab, so elsewhere it does nothing.
func (j *Job) PublishReports(r Reports) {
	if j.Platform != PlatformAzure {
		return
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(j.Workspace(), p)
	}
	if r.JUnit != "" {
		title := r.Title
		if title == "" {
			title = j.Tool.Name
		}
		j.azureCommandLine("results.publish", [][2]string{
			{"type", "JUnit"}, {"mergeResults", "true"}, {"runTitle", j.masks.redact(title)},
			{"resultFiles", abs(r.JUnit)}, {"failTaskOnFailedTests", "false"},
		}, "")
	}
	if r.Cobertura != "" {
		j.azureCommandLine("codecoverage.publish", [][2]string{
			{"codecoveragetool", "Cobertura"}, {"summaryfile", abs(r.Cobertura)},
		}, "")
	}
}

// azureBranch drops the refs/heads/ prefix: the agent gives pull request
// branches in either form depending on the repository's host.
func azureBranch(ref string) string {
	return strings.TrimPrefix(ref, "refs/heads/")
}

// azureDefaultBranchVariable names the branch builds tag "latest" on.
// Azure Pipelines has no predefined variable for a repository's default
// branch, so a pipeline sets this one when the checkout cannot tell.
const azureDefaultBranchVariable = "HOIST_DEFAULT_BRANCH"

// azureGit reads the git context from the agent's variables: the
// checkout's ref and commit, why the build ran, and the pull request.
func (j *Job) azureGit() gitmeta.Context {
	getenv := j.env.Getenv
	c := gitmeta.Context{
		Ref:            getenv("BUILD_SOURCEBRANCH"),
		SHA:            getenv("BUILD_SOURCEVERSION"),
		ShortSHALength: 7,
		DefaultBranch:  azureBranch(getenv(azureDefaultBranchVariable)),
		RepositoryURL:  WebURL(getenv("BUILD_REPOSITORY_URI")),
	}
	switch {
	case strings.HasPrefix(c.Ref, "refs/tags/"):
		c.Tag = strings.TrimPrefix(c.Ref, "refs/tags/")
	case strings.HasPrefix(c.Ref, "refs/heads/"):
		c.Branch = strings.TrimPrefix(c.Ref, "refs/heads/")
	}
	if c.DefaultBranch == "" {
		c.DefaultBranch = j.checkoutDefaultBranch()
	}
	switch reason := getenv("BUILD_REASON"); reason {
	case "PullRequest":
		c.Event = gitmeta.EventPullRequest
		c.Tag = ""
		// GitHub pull requests have a number distinct from their ID; Azure
		// Repos ones only an ID.
		n := cmp.Or(getenv("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER"), getenv("SYSTEM_PULLREQUEST_PULLREQUESTID"))
		c.PullRequest, _ = strconv.Atoi(n)
		if c.PullRequest == 0 {
			c.PullRequest = pullFromRef(c.Ref)
		}
		c.Branch = azureBranch(getenv("SYSTEM_PULLREQUEST_SOURCEBRANCH"))
		c.BaseRef = azureBranch(getenv("SYSTEM_PULLREQUEST_TARGETBRANCH"))
	case "IndividualCI", "BatchedCI":
		c.Event = gitmeta.EventPush
		if c.Tag != "" {
			c.Event = gitmeta.EventTag
		}
	case "Schedule":
		c.Event = gitmeta.EventSchedule
	case "Manual":
		c.Event = gitmeta.EventManual
	default: // ResourceTrigger, BuildCompletion, CheckInShelveset, ...
		c.Event = gitmeta.EventOther
	}
	return c
}

// checkoutDefaultBranch is the default branch as the checkout in the
// workspace knows it (origin/HEAD, or a main or master branch), else "".
func (j *Job) checkoutDefaultBranch() string {
	repo, err := git.PlainOpenWithOptions(j.Workspace(), &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return ""
	}
	return localDefaultBranch(repo)
}
