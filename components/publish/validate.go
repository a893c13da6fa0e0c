package publish

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"

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
	verr := &ValidationError{}
	for _, f := range tree.Regular() {
		if !selected(f.Path) {
			continue
		}
		if err := checkYAML(f.Data); err != nil {
			if len(verr.Problems) < maxErrors {
				verr.Problems = append(verr.Problems, f.Path+err.Error())
			} else {
				verr.More++
			}
		}
	}
	if len(verr.Problems) == 0 {
		return nil
	}
	return verr
}

// checkYAML returns ":LINE: problem" for the first problem of a YAML stream.
func checkYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return yamlError(err)
		}
	}
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
