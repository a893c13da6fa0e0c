package ci

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/sethvargo/go-githubactions"

	"github.com/hoist-ci/hoist/internal/outfile"
	"github.com/hoist-ci/hoist/internal/spec"
)

// GitLab's dotenv report limits (doc/ci/yaml/artifacts_reports.md and the
// instance limits): the file must stay under 5 KiB by default, and the
// smallest variable limit any GitLab tier or version enforces is 20.
const (
	dotenvMaxSize      = 5 * 1024
	dotenvMaxVariables = 20
)

// writeOutputs writes a run's outputs in the spec's order: GITHUB_OUTPUT on
// GitHub, a dotenv report on GitLab, output variables (task.setvariable
// isOutput=true) on Azure Pipelines, name=value lines on stdout locally.
// Keys the tool does not declare are a programming error: the declared ones
// are still written and the error is returned.
func (j *Job) writeOutputs(outputs map[string]string) error {
	var unknown []string
	for name := range outputs {
		if !j.declaresOutput(name) {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	var errs []error
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("internal error: %s returned undeclared outputs %s: declare them in internal/spec", j.Tool.Name, strings.Join(unknown, ", ")))
	}
	type kv struct{ name, value string }
	var ordered []kv
	for _, out := range j.Tool.Outputs {
		v, ok := outputs[out.Name]
		if !ok {
			continue
		}
		if j.masks.contains(v) {
			j.Log.Warn("an output holds a masked secret: it is written redacted", "output", out.Name)
			v = j.masks.redact(v)
		}
		j.Log.Debug("output", "name", out.Name, "value", v)
		ordered = append(ordered, kv{out.Name, v})
	}
	if len(ordered) == 0 && len(unknown) == 0 {
		return nil
	}
	switch j.Platform {
	case PlatformGitHub:
		if j.env.Getenv("GITHUB_OUTPUT") == "" {
			errs = append(errs, errors.New("GITHUB_OUTPUT is not set, so the outputs cannot be written: run as a GitHub Actions step, or unset GITHUB_ACTIONS to run locally"))
			break
		}
		for _, o := range ordered {
			if err := j.setGitHubOutput(o.name, o.value); err != nil {
				errs = append(errs, err)
			}
		}
	case PlatformGitLab:
		lines := make([][2]string, 0, len(ordered))
		for _, o := range ordered {
			lines = append(lines, [2]string{o.name, o.value})
		}
		if err := j.writeDotenv(lines); err != nil {
			errs = append(errs, err)
		}
	case PlatformAzure:
		for _, o := range ordered {
			j.azureSetOutput(o.name, o.value)
		}
	default:
		for _, o := range ordered {
			fmt.Fprintf(j.stdout.masked(), "%s=%s\n", o.name, singleLine(o.value))
		}
	}
	return errors.Join(errs...)
}

func (j *Job) declaresOutput(name string) bool {
	for _, out := range j.Tool.Outputs {
		if out.Name == name {
			return true
		}
	}
	return false
}

// setGitHubOutput appends name<<DELIMITER / value / DELIMITER to
// $GITHUB_OUTPUT with a random delimiter (go-githubactions' own SetOutput
// uses a fixed one that a value could contain).
func (j *Job) setGitHubOutput(name, value string) error {
	delim := j.delimiter()
	for tries := 0; strings.Contains(value, delim) || strings.Contains(name, delim); tries++ {
		if tries == 3 {
			return fmt.Errorf("writing output %s: its value contains every delimiter tried", name)
		}
		delim = randomDelimiter()
	}
	err := fileCommand(func() {
		j.gh.IssueFileCommand(&githubactions.Command{
			Name:    "output",
			Message: name + "<<" + delim + githubactions.EOF + value + githubactions.EOF + delim,
		})
	})
	if err != nil {
		return fmt.Errorf("writing output %s to GITHUB_OUTPUT: %w", name, err)
	}
	return nil
}

// singleLine turns a multi-line value into one line: its lines, trimmed,
// joined with commas (list outputs are comma-separated everywhere).
func singleLine(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	var parts []string
	for _, l := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, ",")
}

// DotenvPath is where the GitLab dotenv report is written:
// $HOIST_DOTENV, else <workspace>/<tool>.env. The component template
// declares the same path under artifacts:reports:dotenv.
func (j *Job) DotenvPath() string {
	if p := j.env.Getenv("HOIST_DOTENV"); p != "" {
		return p
	}
	return filepath.Join(j.Workspace(), j.Tool.Name+".env")
}

// writeDotenv writes KEY=value lines GitLab accepts: single-line values
// (newlines become commas), no surrounding blanks, nothing GitLab would
// expand or reject, within the size and variable limits. A value that
// cannot be written is left out with a warning naming it: GitLab rejects
// the whole report when one line is wrong. The file is replaced atomically.
func (j *Job) writeDotenv(outputs [][2]string) error {
	var b strings.Builder
	count := 0
	prefix := j.OutputPrefix()
	for _, o := range outputs {
		name, value := o[0], strings.TrimSpace(singleLine(o[1]))
		key := prefix + "_" + spec.UpperSnake(name)
		if why := dotenvProblem(value); why != "" {
			j.Log.Warn("output left out of the dotenv report: "+why, "output", name, "variable", key)
			continue
		}
		line := key + "=" + value + "\n"
		if count == dotenvMaxVariables {
			j.Log.Warn(fmt.Sprintf("output left out of the dotenv report: GitLab accepts at most %d variables", dotenvMaxVariables), "output", name, "variable", key)
			continue
		}
		if b.Len()+len(line) >= dotenvMaxSize {
			j.Log.Warn(fmt.Sprintf("output left out of the dotenv report: it would exceed GitLab's %d-byte limit", dotenvMaxSize), "output", name, "variable", key, "bytes", len(line))
			continue
		}
		b.WriteString(line)
		count++
	}
	path := j.DotenvPath()
	if err := outfile.Write(path, []byte(b.String())); err != nil {
		return fmt.Errorf("writing the dotenv report %s: %w", path, err)
	}
	return nil
}

// OutputPrefix is the prefix of the job's GitLab dotenv variables: the
// output-prefix input, else the job's name (CI_JOB_NAME), else the tool's
// name — upper-cased, every run of characters other than ASCII letters and
// digits turned into one '_', none at either end (job "build-push" →
// BUILD_PUSH, so BUILD_PUSH_DIGEST).
func (j *Job) OutputPrefix() string {
	var given string
	if _, ok := j.Tool.Input(spec.OutputPrefixInput); ok {
		given = j.String(spec.OutputPrefixInput)
	}
	for _, s := range []string{given, j.env.Getenv("CI_JOB_NAME"), j.Tool.Name} {
		if p := dotenvPrefix(s); p != "" {
			return p
		}
	}
	return "HOIST"
}

// dotenvPrefix upper-cases s and turns every run of characters other than
// ASCII letters and digits into one '_', trimmed at both ends.
func dotenvPrefix(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range strings.ToUpper(s) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			gap = false
			b.WriteRune(r)
			continue
		}
		gap = true
	}
	return b.String()
}

// dotenvProblem says why GitLab could not carry a value, or "".
func dotenvProblem(v string) string {
	if strings.Contains(v, "$") {
		return "it contains '$', which GitLab would expand as a variable"
	}
	for _, r := range v {
		if r == unicode.ReplacementChar || (unicode.IsControl(r) && r != '\t') {
			return "it contains control characters or invalid UTF-8"
		}
	}
	return ""
}
