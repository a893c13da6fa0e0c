package buildpush

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hoist-ci/hoist/internal/need"
)

var secretID = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// ParseSecrets reads the secrets input: one `ID=value`, `ID=env:VARIABLE`
// or `ID=file:PATH` per line. getenv and readFile are the caller's (the
// component reads no environment). Errors name the line's id and the
// variable or path, never a value.
func ParseSecrets(lines []string, getenv func(string) (string, bool), readFile func(string) ([]byte, error)) (map[string][]byte, error) {
	out := map[string][]byte{}
	for i, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		id, spec, ok := strings.Cut(line, "=")
		id = strings.TrimSpace(id)
		if !ok || !secretID.MatchString(id) {
			return nil, fmt.Errorf("input \"secrets\", line %d: write ID=value, ID=env:VARIABLE or ID=file:PATH (ID: letters, digits, . _ -)", i+1)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("input \"secrets\": secret %q is given twice", id)
		}
		switch {
		case strings.HasPrefix(spec, "env:"):
			name := strings.TrimPrefix(spec, "env:")
			v, ok := getenv(name)
			if !ok {
				return nil, need.Wrap(need.Variable, name, fmt.Errorf("input \"secrets\": secret %q comes from the environment variable %s, which is not set or empty: define it", id, name))
			}
			out[id] = []byte(v)
		case strings.HasPrefix(spec, "file:"):
			p := strings.TrimPrefix(spec, "file:")
			data, err := readFile(p)
			if err != nil {
				return nil, need.Wrap(need.FileVariable, id, fmt.Errorf("input \"secrets\": secret %q comes from the file %s, which cannot be read", id, p))
			}
			out[id] = data
		default:
			out[id] = []byte(spec)
		}
	}
	return out, nil
}
