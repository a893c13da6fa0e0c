package publish

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/hoist-ci/hoist/internal/fluxartifact"
)

// maxErrors bounds the problems one validation reports.
const maxErrors = 20

// validated says which files of the content are manifests to validate: every
// .yaml/.yml file, except the chart kept beside a HelmRelease (templates are
// not YAML until Helm renders them).
func validated(opts Options) func(string) bool {
	return func(p string) bool {
		ext := strings.ToLower(path.Ext(p))
		if ext != ".yaml" && ext != ".yml" {
			return false
		}
		if opts.renderMode() == RenderHelm && opts.HelmOutput == HelmHelmRelease && strings.HasPrefix(p, ChartDir+"/") {
			return false
		}
		return true
	}
}

// ValidationError lists the manifests that are not valid YAML, each as
// file:line: problem.
type ValidationError struct {
	Problems []string
	More     int
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d manifest problem(s); nothing was published:", len(e.Problems)+e.More)
	for _, p := range e.Problems {
		b.WriteString("\n  " + p)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more", e.More)
	}
	return b.String()
}

// validate parses every manifest the filter selects, every document of it,
// as Kubernetes would: YAML syntax, and no key twice in a mapping.
func validate(tree *fluxartifact.Tree, selected func(string) bool) error {
	files := tree.Regular()
	errs := make([]error, len(files))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, f := range files {
		if selected(f.Path) {
			g.Go(func() error { errs[i] = checkYAML(f.Data); return nil })
		}
	}
	_ = g.Wait() // every goroutine reports through errs
	verr := &ValidationError{}
	for i, err := range errs {
		if err == nil {
			continue
		}
		if len(verr.Problems) < maxErrors {
			verr.Problems = append(verr.Problems, files[i].Path+err.Error())
		} else {
			verr.More++
		}
	}
	if len(verr.Problems) == 0 {
		return nil
	}
	return verr
}

// checkYAML returns ":LINE: problem" for the first problem of a YAML
// stream. Documents are parsed into nodes (not Go values, which costs a
// third more for a deploy tree), and mappings checked for repeated keys.
func checkYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return yamlError(err)
		}
		if err := duplicateKeys(&n); err != nil {
			return err
		}
	}
}

// duplicateKeys reports the first mapping key defined twice, as yaml.v3
// does when it decodes into a map.
func duplicateKeys(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				continue
			}
			if line, ok := seen[k.Value]; ok {
				return fmt.Errorf(":%d: mapping key %q already defined at line %d", k.Line, k.Value, line)
			}
			seen[k.Value] = k.Line
		}
	}
	for _, c := range n.Content {
		if err := duplicateKeys(c); err != nil {
			return err
		}
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns yaml.v3's "yaml: line 3: problem" and its unmarshal
// errors into ":3: problem" (":" alone when no line is known).
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return lineError(strings.TrimSpace(te.Errors[0]))
	}
	return lineError(err.Error())
}

func lineError(msg string) error {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return fmt.Errorf(":%d: %s", n, m[2])
	}
	return fmt.Errorf(": %s", strings.TrimPrefix(msg, "yaml: "))
}
