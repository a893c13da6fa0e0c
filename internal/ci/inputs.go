package ci

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/hoist-ci/hoist/internal/spec"
)

// inputValue is an input after precedence: flag > environment > default.
type inputValue struct {
	values []string // one per flag occurrence (lists), else a single value
	source string   // "--name", "INPUT_NAME" or "default"; "" when unset
}

func (v inputValue) set() bool { return v.source != "" }

// parsedArgs are the command-line flags by input name.
type parsedArgs struct {
	values map[string][]string
}

// parseArgs reads --name value, --name=value, bare boolean --name (true) and
// --name true|false. List flags may repeat; other flags keep their last value.
// Aliases are accepted. Values parsed before an error are returned with it,
// so that secrets among them can be masked before the error is printed.
func parseArgs(tool spec.Tool, args []string) (parsedArgs, error) {
	p := parsedArgs{values: map[string][]string{}}
	byFlag := map[string]spec.Input{}
	for _, in := range tool.Inputs {
		for _, a := range in.Aliases {
			byFlag[a] = in
		}
	}
	for _, in := range tool.Inputs {
		byFlag[in.Name] = in
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			if i+1 < len(args) {
				return p, fmt.Errorf("unexpected argument %q: %s takes flags only (--name value)", args[i+1], tool.Name)
			}
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			return p, strayArgError(tool, args, i)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		in, known := byFlag[name]
		if !known || !strings.HasPrefix(arg, "--") {
			return p, unknownFlagError(tool, arg, name)
		}
		if in.Type == spec.Boolean && !hasValue {
			value = "true"
			if i+1 < len(args) {
				if _, ok := parseBoolLiteral(args[i+1]); ok {
					value = args[i+1]
					i++
				}
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return p, fmt.Errorf("flag --%s needs a value: --%s VALUE or --%s=VALUE", name, name, name)
			}
			next := args[i+1]
			if nextName, ok := flagName(next); ok {
				if _, isFlag := byFlag[nextName]; isFlag {
					return p, fmt.Errorf("flag --%s needs a value but is followed by the flag %s: write --%s=%s if that is the value", name, next, name, next)
				}
			}
			value = next
			i++
		}
		if in.Type == spec.List || in.Type == spec.Lines {
			p.values[in.Name] = append(p.values[in.Name], value)
		} else {
			p.values[in.Name] = []string{value}
		}
	}
	return p, nil
}

// flagName returns the name of a --name or --name=value argument.
func flagName(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "--") || len(arg) == 2 {
		return "", false
	}
	name, _, _ := strings.Cut(arg[2:], "=")
	return name, true
}

func strayArgError(tool spec.Tool, args []string, i int) error {
	arg := args[i]
	if i > 0 {
		if prev, ok := flagName(args[i-1]); ok && !strings.Contains(args[i-1], "=") {
			if in, found := tool.Input(prev); found && in.Type == spec.Boolean {
				return fmt.Errorf("unexpected argument %q after --%s: a boolean flag takes true or false (--%s=false)", arg, prev, prev)
			}
		}
	}
	if _, ok := tool.Input(arg); ok {
		return fmt.Errorf("unexpected argument %q: %s takes flags only; did you mean --%s?", arg, tool.Name, arg)
	}
	return fmt.Errorf("unexpected argument %q: %s takes flags only (--name value)", arg, tool.Name)
}

func unknownFlagError(tool spec.Tool, arg, name string) error {
	shown := arg
	if k, _, ok := strings.Cut(arg, "="); ok {
		shown = k // never echo a value: it may be a secret
	}
	names := []string{"help", "version"}
	for _, in := range tool.Inputs {
		names = append(names, in.Name)
		names = append(names, in.Aliases...)
	}
	best, dist := closest(strings.ToLower(name), names)
	if best == "" {
		return fmt.Errorf("unknown flag %s: see %s --help", shown, tool.Name)
	}
	if dist <= len(name)/2+1 {
		return fmt.Errorf("unknown flag %s: did you mean --%s?", shown, best)
	}
	return fmt.Errorf("unknown flag %s (the closest is --%s): see %s --help", shown, best, tool.Name)
}

// closest returns the candidate nearest to s (edit distance; a candidate s
// is a prefix of counts as distance 1).
func closest(s string, candidates []string) (string, int) {
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		d := levenshtein(s, c)
		if s != "" && strings.HasPrefix(c, s) {
			d = min(d, 1)
		}
		if d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	return best, bestDist
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// parseBoolLiteral accepts what YAML 1.2 and actions/toolkit's
// getBooleanInput accept: true, True, TRUE, false, False, FALSE.
func parseBoolLiteral(s string) (bool, bool) {
	switch s {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	return false, false
}

// SplitList splits a list input: items are separated by commas or newlines,
// trimmed, and empty items are dropped.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// envNames are the variables an input is read from on a platform. On Azure
// Pipelines, hoist's step templates map each parameter to INPUT_<UPPER_SNAKE>
// (as the GitLab component does); the agent hands a task's own inputs over
// as INPUT_ and the name upper-cased, "." and " " turned into "_" and
// hyphens kept (azure-pipelines-agent VarUtil.ConvertToEnvVariableFormat),
// the GitHub form — both are read, the first that is set wins.
func envNames(p Platform, in spec.Input) []string {
	switch p {
	case PlatformGitHub:
		return []string{in.GitHubEnvName()}
	case PlatformAzure:
		if in.GitHubEnvName() != in.EnvName() {
			return []string{in.EnvName(), in.GitHubEnvName()}
		}
	}
	return []string{in.EnvName()}
}

// maskSecretInputs masks every value a secret input could take (flags and
// every variable it could be read from) and the conventional credential
// variables, before any line is written.
func (j *Job) maskSecretInputs(parsed parsedArgs) {
	for _, in := range j.Tool.Inputs {
		if !in.Secret {
			continue
		}
		for _, v := range parsed.values[in.Name] {
			j.Mask(strings.TrimSpace(v))
		}
		for _, name := range []string{in.GitHubEnvName(), in.EnvName()} {
			j.Mask(strings.TrimSpace(j.env.Getenv(name)))
		}
	}
	for _, name := range credentialEnv() {
		j.Mask(j.env.Getenv(name))
	}
	// A credential inside a URL (a SAS signature, a token as user name or
	// password) is masked whatever input carries it.
	for _, in := range j.Tool.Inputs {
		vals := append([]string{j.env.Getenv(in.GitHubEnvName()), j.env.Getenv(in.EnvName())}, parsed.values[in.Name]...)
		for _, v := range vals {
			for _, s := range urlCredentials(v) {
				j.Mask(s)
			}
		}
	}
}

// resolveInputs applies precedence and validates every input: booleans and
// numbers parse, options are respected, required inputs are set.
func (j *Job) resolveInputs(parsed parsedArgs) error {
	var errs []error
	for _, in := range j.Tool.Inputs {
		v := inputValue{}
		var flagVals []string
		for _, raw := range parsed.values[in.Name] {
			if t := strings.TrimSpace(raw); t != "" {
				flagVals = append(flagVals, t)
			}
		}
		switch {
		case len(flagVals) > 0:
			v = inputValue{values: flagVals, source: "--" + in.Name}
		default:
			for _, name := range envNames(j.Platform, in) {
				if e := strings.TrimSpace(j.env.Getenv(name)); e != "" {
					v = inputValue{values: []string{e}, source: name}
					break
				}
			}
			if !v.set() && in.Default != "" {
				v = inputValue{values: []string{in.Default}, source: "default"}
			}
		}
		j.inputs[in.Name] = v
		if !v.set() {
			if in.Required {
				errs = append(errs, j.requiredError(in))
			}
			continue
		}
		if err := j.validate(in, v); err != nil {
			if v.source != "default" {
				err = fmt.Errorf("%w (set by %s)", err, v.source)
			}
			errs = append(errs, err)
		}
	}
	if in, ok := j.Tool.Input("short-sha-length"); ok && j.inputs[in.Name].set() {
		n, err := j.Int(in.Name)
		switch {
		case err != nil:
			if _, ferr := j.Float(in.Name); ferr == nil { // else already reported
				errs = append(errs, err)
			}
		case n < 4 || n > 64:
			errs = append(errs, fmt.Errorf("input short-sha-length: %d is out of range: use a length from 4 to 64", n))
		}
	}
	return errors.Join(errs...)
}

func (j *Job) validate(in spec.Input, v inputValue) error {
	switch in.Type {
	case spec.Boolean:
		_, err := j.Bool(in.Name)
		return err
	case spec.Number:
		_, err := j.Float(in.Name)
		return err
	}
	if len(in.Options) == 0 {
		return nil
	}
	items := []string{j.String(in.Name)}
	if in.Type == spec.List {
		items = j.List(in.Name)
	}
	for _, item := range items {
		if !contains(in.Options, item) {
			return fmt.Errorf("input %s: %s is not allowed: use one of %s", in.Name, quoteValue(in, item), strings.Join(in.Options, ", "))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// quoteValue shows a value in an error, except a secret's.
func quoteValue(in spec.Input, v string) string {
	if in.Secret {
		return "the secret value"
	}
	return strconv.Quote(v)
}

func (j *Job) input(name string) (spec.Input, inputValue) {
	in, ok := j.Tool.Input(name)
	if !ok {
		panic(fmt.Sprintf("ci: tool %s has no input %q", j.Tool.Name, name))
	}
	return in, j.inputs[name]
}

// String returns an input's value ("" when unset). A list given as repeated
// flags is joined with commas.
func (j *Job) String(name string) string {
	_, v := j.input(name)
	return strings.Join(v.values, ",")
}

// Bool returns a boolean input (false when unset).
func (j *Job) Bool(name string) (bool, error) {
	in, v := j.input(name)
	if !v.set() {
		return false, nil
	}
	s := strings.Join(v.values, ",")
	b, ok := parseBoolLiteral(s)
	if !ok {
		return false, fmt.Errorf("input %s: %s is not a boolean: use true or false", name, quoteValue(in, s))
	}
	return b, nil
}

// Int returns a whole-number input (0 when unset).
func (j *Job) Int(name string) (int, error) {
	in, v := j.input(name)
	if !v.set() {
		return 0, nil
	}
	s := strings.Join(v.values, ",")
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("input %s: %s is not a whole number: use digits, such as 8", name, quoteValue(in, s))
	}
	return n, nil
}

// Float returns a number input (0 when unset).
func (j *Job) Float(name string) (float64, error) {
	in, v := j.input(name)
	if !v.set() {
		return 0, nil
	}
	s := strings.Join(v.values, ",")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("input %s: %s is not a number: use a number such as 8 or 8.5", name, quoteValue(in, s))
	}
	return f, nil
}

// List returns a list input: items separated by commas or newlines,
// trimmed, empties dropped; repeated flags append.
func (j *Job) List(name string) []string {
	_, v := j.input(name)
	var out []string
	for _, s := range v.values {
		out = append(out, SplitList(s)...)
	}
	return out
}

// Set reports whether an input was given (by flag or environment) or has a
// default.
func (j *Job) Set(name string) bool {
	_, v := j.input(name)
	return v.set()
}

// Source tells where an input's value came from: "--name", the variable's
// name, "default", or "" when unset.
func (j *Job) Source(name string) string {
	_, v := j.input(name)
	return v.source
}

// Required returns an input that must be set, or an error naming the input
// and how to set it on every surface.
func (j *Job) Required(name string) (string, error) {
	in, v := j.input(name)
	if !v.set() {
		return "", j.requiredError(in)
	}
	return j.String(name), nil
}

func (j *Job) requiredError(in spec.Input) error {
	return fmt.Errorf("input %q is not set: pass --%s on the CLI, `with: %s:` in a GitHub workflow, `inputs: %s:` on the GitLab component (job variable %s), or `parameters: %s:` on the Azure Pipelines template",
		in.Name, in.Name, in.Name, in.Name, in.EnvName(), in.Name)
}

// logInputs writes, at debug level, where every input came from.
func (j *Job) logInputs() {
	names := make([]string, 0, len(j.Tool.Inputs))
	for _, in := range j.Tool.Inputs {
		names = append(names, in.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		in, v := j.input(name)
		if !v.set() {
			continue
		}
		value := j.String(name)
		if in.Secret {
			value = redacted
		}
		j.Log.Debug("input", "name", name, "value", value, "from", v.source)
	}
}
