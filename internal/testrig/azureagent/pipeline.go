package azureagent

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Var is a pipeline variable as a variable group or the pipeline defines
// it.
type Var struct {
	Value  string
	Secret bool
}

// Agent runs a pipeline file the way an Azure Pipelines agent runs its
// jobs, one after the other on this machine: stages and jobs in order,
// their variables (groups, names, runtime expressions reading earlier
// stages' and jobs' output variables), conditions, template steps expanded
// with their parameters, and script steps run with bash as the agent's
// CmdLine task runs them — variables mapped into the environment
// (upper-cased, "." → "_", secrets only through env:), $(macros) expanded,
// stdout and stderr read for logging commands.
type Agent struct {
	// Repo is the checked-out repository (Build.SourcesDirectory).
	Repo string
	// Resources maps a repository resource's alias to its directory, for
	// `template: path@alias`.
	Resources map[string]string
	// Groups are the variable groups a pipeline may name.
	Groups map[string]map[string]Var
	// Predefined are the variables the agent sets (Build.SourceBranch,
	// Build.Reason, ...); Run adds the directories.
	Predefined map[string]string
	// Env is the agent's own environment (PATH with the tools on it).
	Env []string
	// Temp is the agent's work area (Agent.TempDirectory is made in it).
	Temp string
	// Log receives every step's displayed log.
	Log io.Writer
}

// StepRun is one step's run.
type StepRun struct {
	Name, DisplayName string
	Script            string
	Env               map[string]string
	ExitCode          int
	Skipped, Failed   bool
	Outcome           *Outcome
}

// JobRun is one job's run.
type JobRun struct {
	Name    string
	Steps   []*StepRun
	Outputs map[string]string // "<step>.<variable>"
	Failed  bool
	Skipped bool
}

// StageRun is one stage's run.
type StageRun struct {
	Name    string
	Jobs    []*JobRun
	Failed  bool
	Skipped bool
}

// Run is a pipeline's run.
type Run struct{ Stages []*StageRun }

// Stage returns the named stage's run.
func (r *Run) Stage(name string) *StageRun {
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Job returns the named job's run.
func (s *StageRun) Job(name string) *JobRun {
	if s == nil {
		return nil
	}
	for _, j := range s.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// Step returns the named step's run.
func (j *JobRun) Step(name string) *StepRun {
	if j == nil {
		return nil
	}
	for _, s := range j.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// variables is a scope of variables, names compared without case.
type variables map[string]namedVar

type namedVar struct {
	name string
	Var
}

func (v variables) set(name string, val Var) { v[strings.ToLower(name)] = namedVar{name, val} }

func (v variables) clone() variables {
	out := variables{}
	for k, x := range v {
		out[k] = x
	}
	return out
}

var macroPattern = regexp.MustCompile(`\$\(([A-Za-z0-9_.\-]+)\)`)

// expand replaces $(name) macros with variables' values (secrets too, as
// the agent does); unknown macros stay as written.
func (v variables) expand(s string) string {
	for range 4 {
		next := macroPattern.ReplaceAllStringFunc(s, func(m string) string {
			if x, ok := v[strings.ToLower(m[2:len(m)-1])]; ok {
				return x.Value
			}
			return m
		})
		if next == s {
			break
		}
		s = next
	}
	return s
}

// Run runs the pipeline file.
func (a *Agent) Run(ctx context.Context, file string) (*Run, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	temp, err := os.MkdirTemp(a.Temp, "agent-")
	if err != nil {
		return nil, err
	}
	base := variables{}
	for k, v := range a.Predefined {
		base.set(k, Var{Value: v})
	}
	base.set("Build.SourcesDirectory", Var{Value: a.Repo})
	base.set("System.DefaultWorkingDirectory", Var{Value: a.Repo})
	base.set("Agent.TempDirectory", Var{Value: filepath.Join(temp, "_temp")})
	if err := os.MkdirAll(filepath.Join(temp, "_temp"), 0o755); err != nil {
		return nil, err
	}
	if err := a.addVariables(base, doc["variables"], nil); err != nil {
		return nil, err
	}
	run := &Run{}
	stages, _ := doc["stages"].([]any)
	if len(stages) == 0 {
		return nil, errors.New("only pipelines with stages are emulated")
	}
	for _, s := range stages {
		sm, _ := s.(map[string]any)
		sr := &StageRun{Name: fmt.Sprint(sm["stage"])}
		run.Stages = append(run.Stages, sr)
		svars := base.clone()
		failedBefore := false
		for _, prev := range run.Stages[:len(run.Stages)-1] {
			failedBefore = failedBefore || prev.Failed
		}
		ok, err := condition(sm["condition"], svars, failedBefore)
		if err != nil {
			return run, fmt.Errorf("stage %s: %w", sr.Name, err)
		}
		if !ok {
			sr.Skipped = true
			continue
		}
		if err := a.addVariables(svars, sm["variables"], run); err != nil {
			return run, fmt.Errorf("stage %s: %w", sr.Name, err)
		}
		jobs, _ := sm["jobs"].([]any)
		for _, j := range jobs {
			jm, _ := j.(map[string]any)
			jr, err := a.runJob(ctx, jm, svars, run, sr, filepath.Dir(file), temp)
			if err != nil {
				return run, fmt.Errorf("stage %s: %w", sr.Name, err)
			}
			sr.Jobs = append(sr.Jobs, jr)
			sr.Failed = sr.Failed || jr.Failed
		}
	}
	return run, nil
}

func (a *Agent) runJob(ctx context.Context, jm map[string]any, stageVars variables, run *Run, sr *StageRun, dir, temp string) (*JobRun, error) {
	jr := &JobRun{Name: fmt.Sprint(jm["job"]), Outputs: map[string]string{}}
	vars := stageVars.clone()
	if err := a.addVariables(vars, jm["variables"], &jobScope{run: run, stage: sr}); err != nil {
		return jr, fmt.Errorf("job %s: %w", jr.Name, err)
	}
	steps, err := a.steps(jm["steps"], dir)
	if err != nil {
		return jr, fmt.Errorf("job %s: %w", jr.Name, err)
	}
	var masks []string
	for _, v := range vars {
		if v.Secret && v.Value != "" {
			masks = append(masks, v.Value)
		}
	}
	for i, st := range steps {
		step := &StepRun{Name: str(st["name"]), DisplayName: str(st["displayName"])}
		if step.Name == "" {
			step.Name = fmt.Sprintf("__step%d", i)
		}
		jr.Steps = append(jr.Steps, step)
		if _, ok := st["checkout"]; ok {
			continue
		}
		ok, err := condition(st["condition"], vars, jr.Failed)
		if err != nil {
			return jr, fmt.Errorf("step %s: %w", step.Name, err)
		}
		if !ok {
			step.Skipped = true
			continue
		}
		script, ok := st["script"].(string)
		if !ok {
			script, ok = st["bash"].(string)
		}
		if !ok {
			return jr, fmt.Errorf("step %s: only script and bash steps are emulated: %v", step.Name, st)
		}
		step.Script = vars.expand(script)
		step.Env = map[string]string{}
		if em, ok := st["env"].(map[string]any); ok {
			for k, v := range em {
				step.Env[k] = vars.expand(Stringify(v))
			}
		}
		env := append([]string{}, a.Env...)
		for _, v := range vars {
			if !v.Secret {
				env = append(env, envName(v.name)+"="+vars.expand(v.Value))
			}
		}
		env = append(env, "TF_BUILD=True")
		for k, v := range step.Env {
			env = append(env, k+"="+v)
		}
		out, code, err := a.bash(ctx, step.Script, env, vars.expand("$(Agent.TempDirectory)"))
		if err != nil {
			return jr, fmt.Errorf("step %s: %w", step.Name, err)
		}
		step.ExitCode = code
		step.Outcome = Process(out, masks)
		if a.Log != nil {
			fmt.Fprintf(a.Log, "##[section]Starting: %s\n%s\n##[section]Finishing: %s (exit %d)\n", cmp.Or(step.DisplayName, step.Name), step.Outcome.Text(), cmp.Or(step.DisplayName, step.Name), code)
		}
		masks = append(masks, step.Outcome.Secrets...)
		step.Failed = code != 0 || len(step.Outcome.Failures) > 0
		jr.Failed = jr.Failed || step.Failed
		for name, v := range step.Outcome.Variables {
			if v.Output {
				jr.Outputs[step.Name+"."+name] = v.Value
				vars.set(step.Name+"."+name, Var{Value: v.Value, Secret: v.Secret})
			} else {
				vars.set(name, Var{Value: v.Value, Secret: v.Secret})
			}
		}
	}
	return jr, nil
}

// steps expands template steps into the job's steps.
func (a *Agent) steps(v any, dir string) ([]map[string]any, error) {
	list, _ := v.([]any)
	var out []map[string]any
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a step is not a mapping")
		}
		tmpl, ok := m["template"].(string)
		if !ok {
			out = append(out, m)
			continue
		}
		path, alias, _ := strings.Cut(tmpl, "@")
		root := dir
		if alias != "" {
			if root, ok = a.Resources[alias]; !ok {
				return nil, fmt.Errorf("template %s: no repository resource %q", tmpl, alias)
			}
		}
		src, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", tmpl, err)
		}
		params, _ := m["parameters"].(map[string]any)
		expanded, err := ExpandTemplate(src, params)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", tmpl, err)
		}
		inner, err := a.steps(expanded["steps"], filepath.Dir(filepath.Join(root, path)))
		if err != nil {
			return nil, err
		}
		out = append(out, inner...)
	}
	return out, nil
}

// jobScope is what a job's runtime expressions read: earlier stages'
// outputs and earlier jobs of its own stage.
type jobScope struct {
	run   *Run
	stage *StageRun
}

var runtimeExpr = regexp.MustCompile(`^\$\[\s*(.*?)\s*\]$`)

// addVariables adds a variables: section (a mapping, or a list of
// {group}, {name, value}).
func (a *Agent) addVariables(vars variables, v any, scope any) error {
	add := func(name string, value any) error {
		s := Stringify(value)
		if m := runtimeExpr.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
			js, ok := scope.(*jobScope)
			if !ok {
				return fmt.Errorf("variable %s: runtime expressions are emulated in jobs' variables only", name)
			}
			val, err := js.eval(m[1])
			if err != nil {
				return fmt.Errorf("variable %s: %w", name, err)
			}
			s = val
		}
		vars.set(name, Var{Value: s})
		return nil
	}
	switch x := v.(type) {
	case nil:
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if err := add(k, x[k]); err != nil {
				return err
			}
		}
	case []any:
		for _, item := range x {
			m, _ := item.(map[string]any)
			if g, ok := m["group"].(string); ok {
				group, ok := a.Groups[g]
				if !ok {
					return fmt.Errorf("variable group %q is not defined", g)
				}
				for k, gv := range group {
					vars.set(k, gv)
				}
				continue
			}
			name, _ := m["name"].(string)
			if name == "" {
				return fmt.Errorf("a variable has no name: %v", m)
			}
			if err := add(name, m["value"]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("variables: %T is not emulated", v)
	}
	return nil
}

var outputRef = regexp.MustCompile(`^(stageDependencies\.([A-Za-z0-9_]+)\.|dependencies\.)([A-Za-z0-9_]+)\.outputs\['([A-Za-z0-9_]+\.[A-Za-z0-9_\-]+)'\]$`)

// eval reads stageDependencies.<stage>.<job>.outputs['<step>.<var>'] or
// dependencies.<job>.outputs['<step>.<var>'].
func (js *jobScope) eval(expr string) (string, error) {
	m := outputRef.FindStringSubmatch(expr)
	if m == nil {
		return "", fmt.Errorf("runtime expression %q is not emulated", expr)
	}
	stage := js.stage
	if m[2] != "" {
		stage = js.run.Stage(m[2])
	}
	job := stage.Job(m[3])
	if job == nil {
		return "", nil // Azure gives an empty value for what did not run
	}
	return job.Outputs[m[4]], nil
}

// condition evaluates a stage's, job's or step's condition: succeeded(),
// failed(), always() and the template functions over variables['x'].
func condition(v any, vars variables, failedBefore bool) (bool, error) {
	c := strings.TrimSpace(Stringify(v))
	if c == "" {
		return !failedBefore, nil
	}
	for fn, val := range map[string]bool{"succeeded()": !failedBefore, "failed()": failedBefore, "always()": true} {
		c = strings.ReplaceAll(c, fn, fmt.Sprint(val))
	}
	byName := map[string]any{}
	for _, x := range vars {
		byName[x.name] = x.Value
	}
	res, err := eval(c, scope{"variables": byName})
	if err != nil {
		return false, fmt.Errorf("condition %q: %w", c, err)
	}
	return truthy(res), nil
}

// bash runs a script as the CmdLine task does on Linux: written to a file,
// run with bash --noprofile --norc (no -e: the last command's status is
// the step's), stdout and stderr read together.
func (a *Agent) bash(ctx context.Context, script string, env []string, temp string) (string, int, error) {
	f, err := os.CreateTemp(temp, "*.sh")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return "", 0, err
	}
	f.Close()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", f.Name())
	cmd.Dir = a.Repo
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	return out.String(), 0, err
}

// envName is the agent's VarUtil.ConvertToEnvVariableFormat: "." and " "
// become "_", the name is upper-cased.
func envName(name string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", " ", "_").Replace(name))
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// Names lists a map's keys, sorted.
func Names[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
