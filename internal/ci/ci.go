// Package ci is the only code in hoist that knows where it runs: a GitHub
// Actions step, a GitLab CI/CD job, an Azure Pipelines step, or a plain
// command line.
//
// It reads a tool's inputs (flags, INPUT_* variables, spec defaults), masks
// secret inputs before anything is written, fills the git context of the run,
// and writes outputs, step summaries, annotations and log groups in each
// platform's own format. Tools see a *Job and never the platform.
package ci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/spec"
)

// Platform is where a tool runs.
type Platform string

// Platforms.
const (
	PlatformGitHub Platform = "github"
	PlatformGitLab Platform = "gitlab"
	PlatformAzure  Platform = "azure"
	PlatformLocal  Platform = "local"
)

// Detect tells the platform from the environment: GITHUB_ACTIONS=true is
// GitHub (also under act), GITLAB_CI=true is GitLab, anything else is local.
// gitlab-ci-local sets GITLAB_CI=false but runs jobs with GitLab's CI_*
// variables and artifacts (dotenv reports included), so a job that has a
// CI_JOB_ID and a CI_PROJECT_DIR is a GitLab job there too. The Azure
// Pipelines agent sets TF_BUILD=True in every step.
func Detect(getenv func(string) string) Platform {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		return PlatformGitHub
	case getenv("GITLAB_CI") == "true",
		getenv("GITLAB_CI") == "false" && getenv("CI_JOB_ID") != "" && getenv("CI_PROJECT_DIR") != "":
		return PlatformGitLab
	case strings.EqualFold(getenv("TF_BUILD"), "true"):
		return PlatformAzure
	default:
		return PlatformLocal
	}
}

// Env is everything a tool takes from its process. Tests build one by hand.
type Env struct {
	Args   []string // command-line arguments without the program name
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	Dir    string // working directory: the local git repository and workspace
}

// OSEnv is the process's own environment.
func OSEnv() Env {
	dir, err := os.Getwd()
	if err != nil {
		dir = "."
	}
	return Env{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Dir: dir}
}

// ErrHelp is returned by Start after it printed --help or --version.
var ErrHelp = errors.New("help requested")

// UsageError is an error in how the tool was called: an unknown flag, an
// input value that does not parse, a required input missing. Main exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErr(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// Exit codes of Main.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Job is one run of a tool: its inputs, its git context, and the platform's
// ways of reporting. Its methods are safe for concurrent use.
type Job struct {
	Platform Platform
	Tool     spec.Tool
	Git      gitmeta.Context
	Log      *slog.Logger

	env     Env
	inputs  map[string]inputValue
	masks   *masker
	logs    *console // the log stream: Stdout on CI, Stderr locally
	stdout  *console // machine-readable output (local outputs)
	gh      *githubactions.Action
	ghRaw   *githubactions.Action // unmasked, for ::add-mask:: only
	logCore *logCore

	now       func() time.Time
	delimiter func() string
	sections  *counter
}

// RunFunc is a tool's work: it reads the job's inputs and returns its
// outputs.
type RunFunc func(context.Context, *Job) (map[string]string, error)

// Exec is a tool's main: Main in the process's environment, with SIGINT and
// SIGTERM cancelling the run's context. It returns the exit code.
func Exec(tool spec.Tool, run RunFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Main(ctx, tool, OSEnv(), run)
}

// Main runs a tool: Start, run, write outputs, report the error. It returns
// the process exit code: 0, 1 for a failed run, 2 for a usage error.
func Main(ctx context.Context, tool spec.Tool, env Env, run RunFunc) int {
	j, err := start(ctx, tool, env)
	if errors.Is(err, ErrHelp) {
		return ExitOK
	}
	if err != nil {
		j.reportError(err)
		var ue *UsageError
		if errors.As(err, &ue) {
			if j.Platform == PlatformLocal {
				j.logs.printf("run '%s --help' for the flags\n", tool.Name)
			}
			return ExitUsage
		}
		return ExitError
	}
	outputs, runErr := j.call(ctx, run)
	if outErr := j.writeOutputs(outputs); outErr != nil {
		runErr = errors.Join(runErr, outErr)
	}
	if runErr == nil {
		return ExitOK
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		why := "interrupted (SIGINT/SIGTERM)"
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			why = "timed out"
		}
		runErr = fmt.Errorf("%s %s before it finished: %w", tool.Name, why, runErr)
	}
	j.reportError(runErr)
	return ExitError
}

// call runs run, turning a panic into an error so outputs and the masked
// error report still happen.
func (j *Job) call(ctx context.Context, run func(context.Context, *Job) (map[string]string, error)) (outputs map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in %s: %v", j.Tool.Name, r)
		}
	}()
	return run(ctx, j)
}

// reportError prints a run's error through the masks: ::error:: on GitHub,
// "error: ..." elsewhere. An error that names what is missing (need) gets
// the fix for this platform. An overlong path in it is shortened.
func (j *Job) reportError(err error) {
	msg := err.Error()
	if fix := j.Fix(err); fix != "" {
		msg += " (" + fix + ")"
	}
	// Redacted before it is shortened: a cut secret would no longer match.
	j.logCore.emit(slog.LevelError, shortenWords(j.masks.redact(msg)))
}

// Start parses and validates the inputs, masks every secret input, and
// reads the git context. After --help or --version it returns ErrHelp.
func Start(ctx context.Context, tool spec.Tool, env Env) (*Job, error) {
	j, err := start(ctx, tool, env)
	if err != nil {
		return nil, err
	}
	return j, nil
}

// start is Start, but returns the Job even on error so that Main can report
// the error through the masks and in the platform's format.
func start(ctx context.Context, tool spec.Tool, env Env) (*Job, error) {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	j := newJob(tool, env)

	if done, err := j.helpOrVersion(); done {
		return j, err
	}
	parsed, parseErr := parseArgs(tool, env.Args)
	// Secrets are masked before anything at all is written, even when the
	// flags do not parse.
	j.maskSecretInputs(parsed)
	if parseErr != nil {
		return j, usageErr(parseErr)
	}
	if err := j.resolveInputs(parsed); err != nil {
		return j, usageErr(err)
	}
	if err := j.requireVariables(); err != nil {
		return j, usageErr(err)
	}
	if err := j.readGit(ctx); err != nil {
		return j, usageErr(err)
	}
	j.logInputs()
	return j, nil
}

func newJob(tool spec.Tool, env Env) *Job {
	platform := Detect(env.Getenv)
	masks := &masker{}
	logW := env.Stdout
	if platform == PlatformLocal {
		logW = env.Stderr
	}
	j := &Job{
		Platform:  platform,
		Tool:      tool,
		env:       env,
		inputs:    map[string]inputValue{},
		masks:     masks,
		logs:      &console{w: logW, masks: masks, defuse: defuser(platform)},
		stdout:    &console{w: env.Stdout, masks: masks},
		now:       time.Now,
		delimiter: randomDelimiter,
		sections:  &counter{},
	}
	j.gh = githubactions.New(githubactions.WithWriter(j.logs.masked()), githubactions.WithGetenv(env.Getenv))
	j.ghRaw = githubactions.New(githubactions.WithWriter(j.logs.raw()), githubactions.WithGetenv(env.Getenv))
	j.logCore = &logCore{platform: platform, out: j.logs.masked(), gh: j.gh, masks: masks, debug: debugEnabled(platform, env.Getenv), azure: j.azureCommandLine}
	j.Log = slog.New(newLogHandler(j.logCore))
	return j
}

// debugEnabled: GitHub and Azure Pipelines always receive debug lines (the
// runner shows them with ACTIONS_STEP_DEBUG, the agent with System.Debug);
// elsewhere HOIST_DEBUG=true or GitLab's
// CI_DEBUG_TRACE=true turn them on.
func debugEnabled(p Platform, getenv func(string) string) bool {
	if p == PlatformGitHub || p == PlatformAzure {
		return true
	}
	if b, ok := parseBoolLiteral(getenv("HOIST_DEBUG")); ok && b {
		return true
	}
	return p == PlatformGitLab && getenv("CI_DEBUG_TRACE") == "true"
}

// Getenv returns a raw environment variable (registry conventions such as
// DOCKER_AUTH_CONFIG read it).
func (j *Job) Getenv(key string) string { return j.env.Getenv(key) }

// Workspace is the directory the job works in: GITHUB_WORKSPACE on GitHub,
// CI_PROJECT_DIR on GitLab, BUILD_SOURCESDIRECTORY on Azure Pipelines,
// Env.Dir locally (and as a fallback).
func (j *Job) Workspace() string {
	var dir string
	switch j.Platform {
	case PlatformGitHub:
		dir = j.env.Getenv("GITHUB_WORKSPACE")
	case PlatformGitLab:
		dir = j.env.Getenv("CI_PROJECT_DIR")
	case PlatformAzure:
		dir = j.env.Getenv("BUILD_SOURCESDIRECTORY")
	}
	if dir == "" {
		dir = j.env.Dir
	}
	return dir
}

// RequiredVariablesInput names the input with which a pipeline declares the
// environment variables a job cannot run without.
const RequiredVariablesInput = "required-variables"

// requireVariables fails at once, naming every variable the pipeline
// declared required (input required-variables) that is unset or empty, and
// masks the values of those that are set: they are credentials more often
// than not (HARBOR_ROBOT_CREDS_JSON).
func (j *Job) requireVariables() error {
	if _, ok := j.Tool.Input(RequiredVariablesInput); !ok {
		return nil
	}
	var missing []string
	for _, name := range j.List(RequiredVariablesInput) {
		v := j.env.Getenv(name)
		if strings.TrimSpace(v) == "" {
			missing = append(missing, name)
			continue
		}
		j.Mask(v)
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s not set, and this pipeline requires %s (input %s): define %s as a CI/CD variable "+
		"(GitLab: Settings > CI/CD > Variables, masked; GitHub: a secret passed with env:; Azure Pipelines: a secret variable mapped with env:) or remove %s from %s",
		strings.Join(missing, ", "), isAre(len(missing)), itThem(len(missing)), RequiredVariablesInput,
		itThem(len(missing)), itThem(len(missing)), RequiredVariablesInput)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// Print writes text as it is — a diff, a report — to the job's log, through
// the masks: the log is stdout on CI and stderr locally, where stdout holds
// the outputs.
func (j *Job) Print(text string) {
	_, _ = io.WriteString(j.logs.masked(), text)
}

// LogWriter is the job's log as a writer (a build's command output),
// through the masks.
func (j *Job) LogWriter() io.Writer { return j.logs.masked() }

// APIURLFor is the platform's REST API (GITHUB_API_URL, CI_API_V4_URL) when
// repository — a git URL, or "" for the job's own repository — is hosted on
// the platform's own server; otherwise "" (a client then derives the API
// from the repository's URL: a GitLab job may bump a repository on GitHub).
func (j *Job) APIURLFor(repository string) string {
	var server, api string
	switch j.Platform {
	case PlatformGitHub:
		server, api = j.env.Getenv("GITHUB_SERVER_URL"), j.env.Getenv("GITHUB_API_URL")
		if server == "" {
			server = "https://github.com"
		}
		if api == "" {
			api = "https://api.github.com"
		}
	case PlatformGitLab:
		server, api = j.env.Getenv("CI_SERVER_URL"), j.env.Getenv("CI_API_V4_URL")
	default:
		return ""
	}
	if repository == "" {
		return api
	}
	if repoHost(repository) != "" && repoHost(repository) == repoHost(server) {
		return api
	}
	return ""
}

// repoHost is the host of an https, ssh or scp-like (git@host:path) URL.
func repoHost(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return strings.ToLower(u.Hostname())
	}
	if at := strings.Index(s, "@"); at >= 0 {
		if colon := strings.Index(s[at:], ":"); colon > 0 {
			return strings.ToLower(s[at+1 : at+colon])
		}
	}
	return ""
}

// RequestTagPrefix is what the platform calls a change request in image
// tags: "mr" (merge request) on GitLab, "pr" (pull request) elsewhere.
func (j *Job) RequestTagPrefix() string {
	if j.Platform == PlatformGitLab {
		return "mr"
	}
	return "pr"
}

// DefaultImage is the project's own image repository: $CI_REGISTRY_IMAGE on
// GitLab, ghcr.io/<owner>/<repo> (lower-cased) on GitHub, "" locally.
func (j *Job) DefaultImage() string {
	switch j.Platform {
	case PlatformGitLab:
		return j.env.Getenv("CI_REGISTRY_IMAGE")
	case PlatformGitHub:
		if repo := j.env.Getenv("GITHUB_REPOSITORY"); repo != "" {
			return "ghcr.io/" + strings.ToLower(repo)
		}
	}
	return ""
}
