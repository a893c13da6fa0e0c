package ci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/testrig/azureagent"
)

// tricky values hold every character the logging-command grammar treats
// specially, and the escapes themselves written literally.
var tricky = []string{
	"plain",
	"semi;colon and ]bracket[",
	"line one\nline two\r\nthree",
	"100% done, %3B is not a semicolon, %AZP25 is not a percent, %0A stays",
	"##vso[task.setvariable variable=evil]pwned",
	"trailing ]",
	"é ü — 日本",
	"=leading equals=",
}

// TestAzureEscapingRoundTrips renders commands with tricky property values
// and data and reads them back with the agent's grammar.
func TestAzureEscapingRoundTrips(t *testing.T) {
	for _, v := range tricky {
		line := azureCommand("task.setvariable", [][2]string{{"variable", v}, {"isOutput", "true"}}, v)
		require.False(t, strings.ContainsAny(line, "\r\n"), "one line: %q", line)
		c, ok := azureagent.ParseCommand(line)
		require.True(t, ok, line)
		require.Equal(t, "task.setvariable", c.Name())
		require.Equal(t, v, c.Properties["variable"], line)
		require.Equal(t, "true", c.Properties["isoutput"])
		require.Equal(t, v, c.Data, line)
	}
}

// FuzzAzureCommand: any property value and data survive the agent's
// parsing, and the command stays on one line.
func FuzzAzureCommand(f *testing.F) {
	for _, v := range tricky {
		f.Add(v, v)
	}
	f.Fuzz(func(t *testing.T, prop, data string) {
		if prop == "" {
			return // empty properties are left out, as the task library does
		}
		line := azureCommand("task.logissue", [][2]string{{"type", "error"}, {"sourcepath", prop}}, data)
		require.False(t, strings.ContainsAny(line, "\r\n"))
		c, ok := azureagent.ParseCommand(line)
		require.True(t, ok, line)
		require.Equal(t, prop, c.Properties["sourcepath"])
		require.Equal(t, data, c.Data)
	})
}

// FuzzAzureDefuse: after defusing, no line of any text reads as a logging
// or formatting command — also by the agent's culture-aware search, which
// skips zero-width characters.
func FuzzAzureDefuse(f *testing.F) {
	for _, s := range []string{"##vso[task.complete result=Failed]", "x ##vso[task.setsecret]a", "##[group]x", "  ##[endgroup]",
		"##VSO[task.debug]x", "#\u200b#vso[task.debug]x", "#\x01#vso[a.b]c", "\u200b##[group]x", "###vso[a.b]", "##vso##vso[a.b]c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, line := range strings.Split(azureDefuse(s), "\n") {
			_, ok := azureagent.ParseCommand(line)
			require.False(t, ok, "%q reads as a command", line)
			_, _, formatting := azureagent.IsFormatting(strings.TrimLeft(line, " \t"))
			require.False(t, formatting, "%q reads as a formatting command", line)
		}
	})
}

// azureRun runs a tool under an emulated agent and returns what the agent
// made of its output.
func azureRun(t *testing.T, vars map[string]string, args []string, run func(context.Context, *Job) (map[string]string, error)) (int, *azureagent.Outcome, *harness) {
	t.Helper()
	h := newHarness(t, vars, args...)
	code := Main(context.Background(), testTool(), h.env(), run)
	require.Empty(t, h.stderr.String(), "the agent reads stdout and stderr alike; hoist writes its log to stdout")
	return code, azureagent.Process(h.stdout.String(), nil), h
}

func TestAzureOutputsAreOutputVariables(t *testing.T) {
	code, o, _ := azureRun(t, azEnv(), nil, func(context.Context, *Job) (map[string]string, error) {
		return sampleOutputs(), nil
	})
	require.Equal(t, 0, code)
	require.Empty(t, o.Failures)
	require.Empty(t, o.Warnings)
	require.Equal(t, map[string]azureagent.Variable{
		"digest": {Value: "sha256:0123456789abcdef", Output: true},
		"image":  {Value: "reg.example.com/app@sha256:0123456789abcdef", Output: true},
		"tags":   {Value: "reg.example.com/app:1.4.2\nreg.example.com/app:1.4\nreg.example.com/app:1", Output: true},
	}, o.Variables)
	var names []string
	for _, c := range o.Commands {
		if c.Name() == "task.setvariable" {
			names = append(names, c.Properties["variable"])
		}
	}
	require.Equal(t, []string{"digest", "image", "tags"}, names, "in the spec's order")
}

func TestAzureOutputsWrittenOnFailure(t *testing.T) {
	code, o, _ := azureRun(t, azEnv(), nil, func(context.Context, *Job) (map[string]string, error) {
		return map[string]string{"digest": "sha256:abc"}, errors.New("pushing the tag: denied; retry\nlater")
	})
	require.Equal(t, ExitError, code)
	require.Equal(t, "sha256:abc", o.Variables["digest"].Value)
	require.Equal(t, []azureagent.Issue{{Type: "error", Message: "pushing the tag: denied; retry\nlater"}}, o.Issues)
}

// TestAzureSecretsRegisteredFirst: every secret is registered with
// task.setsecret before any other command or line, and appears nowhere else
// — not in logs, issues, groups, outputs or the summary.
func TestAzureSecretsRegisteredFirst(t *testing.T) {
	sas := "sv=2024-11-04&ss=b&srt=o&sp=r&se=2030-01-01T00%3A00%3A00Z&sig=CANARYsasSIGNATURE%2Bx%3D"
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want []string
	}{
		{"flag", azEnv(), []string{"--password", canary}, []string{canary}},
		{"template variable", azEnv("INPUT_PASSWORD", canary), nil, []string{canary}},
		{"task input", azEnv("INPUT_PASSWORD", canary), nil, []string{canary}},
		{"credential variable", azEnv("SYSTEM_ACCESSTOKEN", canary), nil, []string{canary}},
		{"token in a URL", azEnv("INPUT_SOURCE", "git://ghp_CANARYtoken0123456789abcdef@dev.azure.com/org/repo.git"), nil, []string{"ghp_CANARYtoken0123456789abcdef"}},
		{"SAS in a URL", azEnv("INPUT_SOURCE", "https://acct.blob.core.windows.net/c/ctx.tar.gz?"+sas), nil, []string{"CANARYsasSIGNATURE+x="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			vars := with(tt.vars, "AGENT_TEMPDIRECTORY", tmp)
			_, o, h := azureRun(t, vars, tt.args, func(_ context.Context, j *Job) (map[string]string, error) {
				for _, s := range tt.want {
					end := j.Group("logging in with " + s)
					j.Log.Info("password is "+s, "password", s)
					j.Log.Debug("debug", "secret", s)
					j.Log.Warn("warn " + s)
					j.Annotate(Annotation{Level: "error", File: "a;b.yml", Line: 1, Title: s, Message: "bad " + s})
					require.NoError(t, j.AddSummary("| secret | "+s+" |"))
					j.Print("printed " + s + "\n")
					end()
				}
				return map[string]string{"digest": "sha256:" + tt.want[0]}, errors.New("auth failed for " + tt.want[0])
			})
			require.Subset(t, o.Secrets, tt.want)
			require.Empty(t, o.CommandBeforeSecret, "a command came before the secrets were registered")
			require.True(t, strings.HasPrefix(h.stdout.String(), "##vso[task.setsecret]"), "the first line registers a secret:\n%s", h.stdout.String())
			for _, line := range strings.Split(h.stdout.String(), "\n") {
				if strings.HasPrefix(line, "##vso[task.setsecret]") {
					continue
				}
				for _, s := range tt.want {
					require.NotContains(t, line, s)
					require.NotContains(t, line, azureEscapeData(s))
				}
			}
			for _, content := range o.Summaries {
				for _, s := range tt.want {
					require.NotContains(t, content, s)
				}
			}
		})
	}
}

func TestAzureInputs(t *testing.T) {
	tests := []struct {
		name   string
		vars   map[string]string
		input  string
		want   string
		source string
	}{
		{"template form", azEnv("INPUT_SEMVER_ALIASES", "False"), "semver-aliases", "False", "INPUT_SEMVER_ALIASES"},
		{"task form", azEnv("INPUT_SEMVER-ALIASES", "False"), "semver-aliases", "False", "INPUT_SEMVER-ALIASES"},
		{"template form wins", azEnv("INPUT_DRY_RUN", "True", "INPUT_DRY-RUN", "false"), "dry-run", "True", "INPUT_DRY_RUN"},
		{"empty is unset", azEnv("INPUT_LATEST", ""), "latest", "auto", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustStart(t, testTool(), newHarness(t, tt.vars))
			require.Equal(t, tt.want, j.String(tt.input))
			require.Equal(t, tt.source, j.Source(tt.input))
		})
	}
	// Azure renders a boolean template parameter as True or False.
	j := mustStart(t, testTool(), newHarness(t, azEnv("INPUT_DRY_RUN", "True")))
	b, err := j.Bool("dry-run")
	require.NoError(t, err)
	require.True(t, b)
}

// TestAzureCommandsInTextAreInert: text a tool prints — a registry's error,
// a RUN command's output, a group title — cannot issue commands.
func TestAzureCommandsInTextAreInert(t *testing.T) {
	evil := "x ##vso[task.setvariable variable=digest;isOutput=true]sha256:evil"
	_, o, h := azureRun(t, azEnv(), nil, func(_ context.Context, j *Job) (map[string]string, error) {
		j.Log.Info("registry said: " + evil + "\n##[group]fake")
		j.Print(evil + "\n##vso[task.complete result=Failed]\n")
		_, _ = j.LogWriter().Write([]byte("#5 " + evil + "\n"))
		end := j.Group("title " + evil)
		end()
		j.Annotate(Annotation{Level: "notice", Message: evil})
		return nil, nil
	})
	for _, c := range o.Commands {
		require.Equal(t, "task.debug", c.Name(), "no command was issued but hoist's own debug lines:\n%s", h.stdout.String())
	}
	require.Empty(t, o.Warnings)
	require.Empty(t, o.Variables)
	require.Equal(t, []string{"title x ＃＃vso[task.setvariable variable=digest;isOutput=true]sha256:evil"}, o.Groups)
	require.Contains(t, o.Text(), "registry said: x ＃＃vso[task.setvariable", "the text is kept, visibly")
	require.Contains(t, o.Text(), "\n＃＃[group]fake")
}

func TestAzureAnnotateAllWithinAgentLimits(t *testing.T) {
	var as []Annotation
	for i := 0; i < 14; i++ {
		as = append(as, Annotation{Level: "error", File: "a.go", Line: i + 1, Message: "failed"})
	}
	for i := 0; i < 3; i++ {
		as = append(as, Annotation{Level: "warning", File: "b.go", Line: i + 1, Message: "lint"})
		as = append(as, Annotation{Level: "notice", File: "c.go", Line: i + 1, Message: "note"})
	}
	var left int
	_, o, _ := azureRun(t, azEnv(), nil, func(_ context.Context, j *Job) (map[string]string, error) {
		left = j.AnnotateAll(as)
		return nil, nil
	})
	require.Equal(t, 4, left)
	require.Len(t, o.Issues, 13)
	require.Contains(t, o.Text(), "4 errors not shown as annotations (Azure Pipelines keeps at most 10 errors and 10 warnings per step)")
	require.NotContains(t, o.Text(), "note", "notices stay in the summary")
}

func TestAzureSummary(t *testing.T) {
	tmp := t.TempDir()
	_, o, _ := azureRun(t, azEnv("AGENT_TEMPDIRECTORY", tmp), nil, func(_ context.Context, j *Job) (map[string]string, error) {
		require.NoError(t, j.AddSummary("## first\n"))
		require.NoError(t, j.AddSummary("## second\n"))
		return nil, nil
	})
	require.Empty(t, o.Failures)
	require.Equal(t, map[string]string{
		filepath.Join(tmp, "hoist-demo-tool.md"):   "## first\n",
		filepath.Join(tmp, "hoist-demo-tool-2.md"): "## second\n",
	}, o.Summaries)
}

func TestAzurePublishReports(t *testing.T) {
	ws := t.TempDir()
	_, o, _ := azureRun(t, azEnv("BUILD_SOURCESDIRECTORY", ws), nil, func(_ context.Context, j *Job) (map[string]string, error) {
		j.PublishReports(Reports{JUnit: "gate-reports/junit.xml", Cobertura: "/abs/coverage.xml", Title: "lint; tests"})
		return nil, nil
	})
	require.Empty(t, o.Failures)
	require.Len(t, o.TestResults, 1)
	require.Equal(t, map[string]string{
		"type": "JUnit", "mergeresults": "true", "runtitle": "lint; tests",
		"resultfiles": filepath.Join(ws, "gate-reports/junit.xml"), "failtaskonfailedtests": "false",
	}, o.TestResults[0].Properties)
	require.Len(t, o.Coverage, 1)
	require.Equal(t, map[string]string{"codecoveragetool": "Cobertura", "summaryfile": "/abs/coverage.xml"}, o.Coverage[0].Properties)

	// Elsewhere: nothing.
	for _, vars := range []map[string]string{ghEnv(), glEnv(), localEnv()} {
		h := newHarness(t, vars)
		j := mustStart(t, testTool(), h)
		h.stdout.Reset()
		h.stderr.Reset()
		j.PublishReports(Reports{JUnit: "x.xml", Cobertura: "y.xml"})
		require.Empty(t, h.stdout.String()+h.stderr.String())
	}
}

func TestAzureGit(t *testing.T) {
	const sha = "1f6e88198c81225d0137b99ad8c72717e31830ed"
	base := func(kv ...string) map[string]string {
		return azEnv(append([]string{"BUILD_SOURCEVERSION", sha, "BUILD_REPOSITORY_URI", "https://org@dev.azure.com/org/proj/_git/app"}, kv...)...)
	}
	tests := []struct {
		name string
		vars map[string]string
		want gitmeta.Context
	}{
		{"CI on a branch", base("BUILD_REASON", "IndividualCI", "BUILD_SOURCEBRANCH", "refs/heads/main", azureDefaultBranchVariable, "main"),
			gitmeta.Context{Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main", DefaultBranch: "main"}},
		{"batched CI on a tag", base("BUILD_REASON", "BatchedCI", "BUILD_SOURCEBRANCH", "refs/tags/v1.4.2"),
			gitmeta.Context{Event: gitmeta.EventTag, Ref: "refs/tags/v1.4.2", Tag: "v1.4.2"}},
		{"Azure Repos pull request", base("BUILD_REASON", "PullRequest", "BUILD_SOURCEBRANCH", "refs/pull/17/merge",
			"SYSTEM_PULLREQUEST_PULLREQUESTID", "17", "SYSTEM_PULLREQUEST_SOURCEBRANCH", "refs/heads/feature/x", "SYSTEM_PULLREQUEST_TARGETBRANCH", "refs/heads/main"),
			gitmeta.Context{Event: gitmeta.EventPullRequest, Ref: "refs/pull/17/merge", PullRequest: 17, Branch: "feature/x", BaseRef: "main"}},
		{"GitHub pull request: number, short branch names", base("BUILD_REASON", "PullRequest", "BUILD_SOURCEBRANCH", "refs/pull/524/merge",
			"SYSTEM_PULLREQUEST_PULLREQUESTID", "512", "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "524",
			"SYSTEM_PULLREQUEST_SOURCEBRANCH", "feature/y", "SYSTEM_PULLREQUEST_TARGETBRANCH", "main"),
			gitmeta.Context{Event: gitmeta.EventPullRequest, Ref: "refs/pull/524/merge", PullRequest: 524, Branch: "feature/y", BaseRef: "main"}},
		{"manual", base("BUILD_REASON", "Manual", "BUILD_SOURCEBRANCH", "refs/heads/release"),
			gitmeta.Context{Event: gitmeta.EventManual, Ref: "refs/heads/release", Branch: "release"}},
		{"schedule", base("BUILD_REASON", "Schedule", "BUILD_SOURCEBRANCH", "refs/heads/main", azureDefaultBranchVariable, "refs/heads/main"),
			gitmeta.Context{Event: gitmeta.EventSchedule, Ref: "refs/heads/main", Branch: "main", DefaultBranch: "main"}},
		{"resource trigger", base("BUILD_REASON", "ResourceTrigger", "BUILD_SOURCEBRANCH", "refs/heads/main"),
			gitmeta.Context{Event: gitmeta.EventOther, Ref: "refs/heads/main", Branch: "main"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustStart(t, testTool(), newHarness(t, tt.vars))
			want := tt.want
			want.SHA, want.ShortSHALength, want.RepositoryURL = sha, 7, "https://dev.azure.com/org/proj/_git/app"
			require.Equal(t, want, j.Git)
		})
	}
}

// TestAzureDefaultBranchFromCheckout: without HOIST_DEFAULT_BRANCH the
// checkout in Build.SourcesDirectory tells the default branch.
func TestAzureDefaultBranchFromCheckout(t *testing.T) {
	dir := t.TempDir()
	gitInit(t, dir, "main")
	j := mustStart(t, testTool(), newHarness(t, azEnv("BUILD_SOURCESDIRECTORY", dir, "BUILD_REASON", "IndividualCI", "BUILD_SOURCEBRANCH", "refs/heads/main")))
	require.Equal(t, "main", j.Git.DefaultBranch)
	require.True(t, j.Git.OnDefaultBranch())
	require.Equal(t, dir, j.Workspace())
}

func TestURLCredentials(t *testing.T) {
	tests := map[string][]string{
		"s3://bucket/key.tar.gz":                                 nil,
		"git://github.com/acme/app.git#refs/heads/main":          nil,
		"git://ghp_0123456789abcdefghijABCDEF@github.com/a":      {"ghp_0123456789abcdefghijABCDEF"},
		"https://user:pa55word@host/x":                           {"pa55word"},
		"https://git@host/x":                                     nil,
		"https://a.blob.core.windows.net/c/k?sv=1&sig=abcd%2Bef": {"abcd+ef"},
		"see https://x/y?X-Amz-Signature=deadbeef and more":      {"deadbeef"},
		"not a url": nil,
	}
	for in, want := range tests {
		require.ElementsMatch(t, want, urlCredentials(in), in)
	}
}

func gitInit(t *testing.T, dir, branch string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".git", "refs", "heads"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".git", "objects"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte("ref: refs/heads/"+branch+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".git", "refs", "heads", branch), []byte("1f6e88198c81225d0137b99ad8c72717e31830ed\n"), 0o644))
}

// realLog is one block of testdata/azure/real-logs.txt.
type realLog struct {
	source    string
	displayed []string // what the agent showed, timestamps dropped
	printed   []string // what a step printed
}

func readRealLogs(t *testing.T) []realLog {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "azure", "real-logs.txt"))
	require.NoError(t, err)
	var logs []realLog
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "# source: "):
			logs = append(logs, realLog{source: strings.TrimPrefix(line, "# source: ")})
		case strings.HasPrefix(line, "> "):
			shown := strings.TrimPrefix(line, "> ")
			if ts, rest, ok := strings.Cut(shown, " "); ok && strings.HasSuffix(ts, "Z") && strings.Contains(ts, "T") {
				shown = rest
			}
			logs[len(logs)-1].displayed = append(logs[len(logs)-1].displayed, shown)
		case strings.HasPrefix(line, "< "):
			logs[len(logs)-1].printed = append(logs[len(logs)-1].printed, strings.TrimPrefix(line, "< "))
		}
	}
	require.Len(t, logs, 4)
	return logs
}

// TestAzureRealLogs replays lines from real runs: the emulated agent reads
// their commands as the real one did, hoist prints byte for byte the command
// a Microsoft task printed for the same warning, output variables read the
// same whichever of the documented spellings is used, a command without its
// newline swallows what follows (hoist ends every command with one), and
// none of the lines, printed by a build's RUN, would act as a command.
func TestAzureRealLogs(t *testing.T) {
	logs := readRealLogs(t)

	t.Run("the agent's processed commands", func(t *testing.T) {
		processed := 0
		for _, l := range logs {
			for i, shown := range l.displayed {
				cmd, ok := strings.CutPrefix(shown, "##[debug]Processed: ")
				if !ok {
					continue
				}
				processed++
				c, ok := azureagent.ParseCommand(cmd)
				require.True(t, ok, "%s: %s", l.source, cmd)
				if c.Name() == "task.logissue" {
					// The agent showed the issue on the line before.
					require.Equal(t, "##["+c.Properties["type"]+"]"+c.Data, l.displayed[i-1], l.source)
					o := azureagent.Process(cmd+"\n", nil)
					require.Equal(t, l.displayed[i-1], o.Text())
				}
			}
		}
		require.Equal(t, 1, processed)
	})

	t.Run("hoist prints the same warning command", func(t *testing.T) {
		msg := "Failed to parse result files:  Object reference not set to an instance of an object."
		_, _, h := azureRun(t, azEnv(), nil, func(_ context.Context, j *Job) (map[string]string, error) {
			j.Log.Warn(msg)
			return nil, nil
		})
		want := strings.TrimPrefix(logs[0].displayed[1], "##[debug]Processed: ")
		require.Contains(t, strings.Split(h.stdout.String(), "\n"), want)
	})

	t.Run("documented setvariable spellings", func(t *testing.T) {
		o := azureagent.Process(strings.Join(logs[2].printed, "\n")+"\n", nil)
		require.Equal(t, map[string]azureagent.Variable{
			"sauce":       {Value: "crushed tomatoes"},
			"secretSauce": {Value: "crushed tomatoes with garlic", Secret: true},
			"outputSauce": {Value: "canned goods", Output: true},
		}, o.Variables)
		_, mine, _ := azureRun(t, azEnv(), nil, func(_ context.Context, j *Job) (map[string]string, error) {
			return map[string]string{"tags": "canned goods"}, nil
		})
		require.Equal(t, azureagent.Variable{Value: "canned goods", Output: true}, mine.Variables["tags"])
	})

	t.Run("a command without its newline", func(t *testing.T) {
		o := azureagent.Process(logs[3].printed[0]+"\n", nil)
		require.Equal(t, "refs/remotes/origin/master##vso[task.debug]Exit code: 0", o.Variables["target_branch"].Value)
		_, _, h := azureRun(t, azEnv("AGENT_TEMPDIRECTORY", t.TempDir()), nil, func(_ context.Context, j *Job) (map[string]string, error) {
			j.Log.Error("no newline at the end")
			require.NoError(t, j.AddSummary("no newline"))
			j.PublishReports(Reports{JUnit: "j.xml"})
			return sampleOutputs(), nil
		})
		for _, line := range strings.Split(strings.TrimSuffix(h.stdout.String(), "\n"), "\n") {
			require.Equal(t, 1, strings.Count(line, "##vso["), "one command per line: %q", line)
		}
		require.True(t, strings.HasSuffix(h.stdout.String(), "\n"))
	})

	t.Run("inert when a build prints them", func(t *testing.T) {
		var all []string
		for _, l := range logs {
			all = append(all, l.displayed...)
			all = append(all, l.printed...)
		}
		_, o, _ := azureRun(t, azEnv(), nil, func(_ context.Context, j *Job) (map[string]string, error) {
			_, _ = j.LogWriter().Write([]byte(strings.Join(all, "\n") + "\n"))
			return nil, nil
		})
		for _, c := range o.Commands {
			require.Equal(t, "task.debug", c.Name())
		}
		require.Empty(t, o.Variables)
		require.Empty(t, o.Issues)
		require.Empty(t, o.Groups)
		require.Empty(t, o.Warnings)
	})
}
