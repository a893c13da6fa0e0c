package azureagent

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Variable is a pipeline variable a step set.
type Variable struct {
	Value          string
	Secret, Output bool
}

// Issue is an error or a warning a step logged with task.logissue.
type Issue struct {
	Type       string // error or warning
	SourcePath string
	Line, Col  int
	Message    string
}

// Outcome is what the agent made of one step's output.
type Outcome struct {
	// Raw is what the step printed, before the agent read it.
	Raw string
	// Log is the step's log as the agent shows it: processed commands
	// consumed, registered secrets masked as ***.
	Log []string
	// Commands are the logging commands processed, in order.
	Commands []Command
	// Secrets are the values registered with task.setsecret and the values
	// of variables set with issecret=true, in order.
	Secrets []string
	// Variables are the variables set with task.setvariable, by name.
	Variables map[string]Variable
	// Issues are the errors and warnings logged with task.logissue.
	Issues []Issue
	// Summaries are the files uploaded with task.uploadsummary, with the
	// content they had then.
	Summaries map[string]string
	// TestResults and Coverage are results.publish and
	// codecoverage.publish commands.
	TestResults, Coverage []Command
	// Groups are the titles of the ##[group] sections, Open how many are
	// left open at the end.
	Groups []string
	Open   int
	// Warnings are what the agent itself would warn about: a line holding
	// "##vso" that does not parse, a command area it does not know.
	Warnings []string
	// Failures are commands the agent would reject, failing the step (an
	// issue type other than error or warning, a variable without a name, a
	// summary file that does not exist, ...).
	Failures []string
	// CommandBeforeSecret is set when a command other than task.setsecret
	// came before the first task.setsecret of a step that registers any.
	CommandBeforeSecret string
}

// knownCommands are the commands of the areas the agent ships (task,
// results, codecoverage, artifact, build, telemetry) that hoist may use.
var knownCommands = map[string]bool{
	"task.logissue": true, "task.issue": true, "task.setvariable": true, "task.setsecret": true,
	"task.uploadsummary": true, "task.uploadfile": true, "task.addattachment": true, "task.debug": true,
	"task.complete": true, "task.setprogress": true, "task.prependpath": true, "task.logdetail": true,
	"task.settaskvariable": true, "task.setendpoint": true,
	"results.publish": true, "codecoverage.publish": true,
	"artifact.upload": true, "artifact.associate": true,
	"build.uploadlog": true, "build.updatebuildnumber": true, "build.addbuildtag": true,
	"telemetry.publish": true,
}

var knownAreas = map[string]bool{"task": true, "results": true, "codecoverage": true, "artifact": true, "build": true, "telemetry": true}

// Process reads a step's output (stdout and stderr, as the agent merges
// them) line by line. secrets are the values masked before the step began
// (secret variables).
func Process(output string, secrets []string) *Outcome {
	o := &Outcome{Raw: output, Variables: map[string]Variable{}, Summaries: map[string]string{}}
	masks := append([]string(nil), secrets...)
	mask := func(s string) string {
		sort.Slice(masks, func(i, j int) bool { return len(masks[i]) > len(masks[j]) })
		for _, m := range masks {
			if m != "" {
				s = strings.ReplaceAll(s, m, "***")
			}
		}
		return s
	}
	output = strings.TrimSuffix(output, "\n")
	if output == "" {
		return o
	}
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimSuffix(line, "\r")
		c, ok := ParseCommand(line)
		if !ok {
			if strings.Contains(dropIgnorable(line), "##vso") {
				o.Warnings = append(o.Warnings, "##vso detected but the command does not parse: "+mask(line))
			}
			if kind, text, ok := IsFormatting(line); ok {
				switch strings.ToLower(kind) {
				case "group":
					o.Groups = append(o.Groups, text)
					o.Open++
				case "endgroup":
					o.Open--
				}
			}
			o.Log = append(o.Log, mask(line))
			continue
		}
		if !knownAreas[strings.ToLower(c.Area)] {
			o.Warnings = append(o.Warnings, "unknown command area "+c.Area)
			continue
		}
		name := strings.ToLower(c.Name())
		if !knownCommands[name] {
			o.Failures = append(o.Failures, "unknown command "+c.Name())
			continue
		}
		o.Commands = append(o.Commands, c)
		if name != "task.setsecret" && o.CommandBeforeSecret == "" && len(o.Secrets) == 0 {
			o.CommandBeforeSecret = c.Name()
		}
		switch name {
		case "task.setsecret":
			if c.Data != "" {
				o.Secrets = append(o.Secrets, c.Data)
				masks = append(masks, c.Data)
			}
		case "task.setvariable":
			v := c.Properties["variable"]
			if v == "" {
				o.Failures = append(o.Failures, "task.setvariable without a variable name")
				continue
			}
			secret, _ := strconv.ParseBool(c.Properties["issecret"])
			output, _ := strconv.ParseBool(c.Properties["isoutput"])
			if secret {
				if strings.Contains(c.Data, "\n") {
					o.Failures = append(o.Failures, "multi-line secret variable "+v)
					continue
				}
				o.Secrets = append(o.Secrets, c.Data)
				masks = append(masks, c.Data)
			}
			o.Variables[v] = Variable{Value: c.Data, Secret: secret, Output: output}
		case "task.logissue", "task.issue":
			typ := strings.ToLower(c.Properties["type"])
			if typ != "error" && typ != "warning" {
				o.Failures = append(o.Failures, fmt.Sprintf("issue type %q is not an expected issue type", c.Properties["type"]))
				continue
			}
			is := Issue{Type: typ, SourcePath: c.Properties["sourcepath"], Message: mask(c.Data)}
			is.Line, _ = strconv.Atoi(c.Properties["linenumber"])
			is.Col, _ = strconv.Atoi(c.Properties["columnnumber"])
			o.Issues = append(o.Issues, is)
			o.Log = append(o.Log, "##["+typ+"]"+is.Message)
		case "task.uploadsummary":
			if c.Data == "" {
				o.Failures = append(o.Failures, "task.uploadsummary without a file")
				continue
			}
			b, err := os.ReadFile(c.Data)
			if err != nil {
				o.Failures = append(o.Failures, "task.uploadsummary: "+err.Error())
				continue
			}
			o.Summaries[c.Data] = string(b)
		case "results.publish":
			if c.Properties["type"] == "" || (c.Data == "" && c.Properties["resultfiles"] == "") {
				o.Failures = append(o.Failures, "results.publish needs type and resultFiles")
				continue
			}
			o.TestResults = append(o.TestResults, c)
		case "codecoverage.publish":
			tool := strings.ToLower(c.Properties["codecoveragetool"])
			if (tool != "cobertura" && tool != "jacoco") || c.Properties["summaryfile"] == "" {
				o.Failures = append(o.Failures, "codecoverage.publish needs codecoveragetool (Cobertura or JaCoCo) and summaryfile")
				continue
			}
			o.Coverage = append(o.Coverage, c)
		case "task.debug":
			o.Log = append(o.Log, "##[debug]"+mask(c.Data))
		}
	}
	return o
}

// Text is the displayed log as one string.
func (o *Outcome) Text() string { return strings.Join(o.Log, "\n") }
