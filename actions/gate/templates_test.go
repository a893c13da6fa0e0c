package main

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/hoist-ci/hoist/components/gate"
	"github.com/hoist-ci/hoist/internal/spec"
)

// TestReadyTemplates checks the hand-written gate-go and gate-python
// components against gate's declaration: every INPUT_ variable is one of
// gate's inputs, and the options they set are valid (run names, score-run).
func TestReadyTemplates(t *testing.T) {
	envNames := map[string]bool{}
	for _, in := range spec.Gate().Inputs {
		envNames[in.EnvName()] = true
	}
	files, err := filepath.Glob("../../templates/gate-*.yml")
	require.NoError(t, err)
	require.Len(t, files, 2)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			dec := yaml.NewDecoder(bytes.NewReader(data))
			var docs []map[string]any
			for {
				var doc map[string]any
				err := dec.Decode(&doc)
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				docs = append(docs, doc)
			}
			require.Len(t, docs, 2, "spec:inputs, then the jobs")
			gateJobs := 0
			for name, job := range docs[1] {
				vars, _ := job.(map[string]any)["variables"].(map[string]any)
				isGate := false
				for k := range vars {
					isGate = isGate || strings.HasPrefix(k, "INPUT_")
				}
				if !isGate {
					continue // the job that copies gate out of hoist's image
				}
				gateJobs++
				o := gate.Options{MinCoverage: math.NaN(), MinScore: math.NaN()}
				for k, v := range vars {
					if !strings.HasPrefix(k, "INPUT_") {
						continue
					}
					require.True(t, envNames[k], "%s: %s is not an input of gate", name, k)
					s, _ := v.(string)
					switch k {
					case "INPUT_RUN":
						for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
							o.Run = append(o.Run, strings.TrimSpace(line))
						}
					case "INPUT_SCORE":
						o.Score = s
					case "INPUT_SCORE_RUN":
						o.ScoreRun = s
					}
				}
				require.NoError(t, o.Validate(), name)
				script, _ := job.(map[string]any)["script"].([]any)
				require.Equal(t, []any{"./.hoist/gate"}, script, name)
			}
			require.NotZero(t, gateJobs)
		})
	}
}
