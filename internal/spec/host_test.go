package spec

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestHostActionMatchesContainerAction: a host action takes the same inputs
// (same defaults) and gives the same outputs as the tool's container action,
// and hands every input to the tool.
func TestHostActionMatchesContainerAction(t *testing.T) {
	type action struct {
		Inputs  map[string]map[string]any `yaml:"inputs"`
		Outputs map[string]map[string]any `yaml:"outputs"`
		Runs    struct {
			Using string `yaml:"using"`
			Steps []struct {
				ID  string            `yaml:"id"`
				Env map[string]string `yaml:"env"`
				Run string            `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	for _, tool := range Tools() {
		t.Run(tool.Name, func(t *testing.T) {
			var container, host action
			b, err := ActionYAML(tool)
			require.NoError(t, err)
			require.NoError(t, yaml.Unmarshal(b, &container))
			b, err = HostActionYAML(tool)
			require.NoError(t, err)
			require.NoError(t, yaml.Unmarshal(b, &host))

			require.Equal(t, container.Inputs, host.Inputs)
			require.Equal(t, "composite", host.Runs.Using)
			require.Len(t, host.Runs.Steps, 1)
			step := host.Runs.Steps[0]
			require.Equal(t, Version, step.Env["HOIST_VERSION"], "the action installs the release it belongs to")
			require.Equal(t, `sh "$HOIST_SCRIPT" `+tool.Name, step.Run)
			names := strings.Fields(step.Env["HOIST_INPUTS"])
			require.Len(t, names, len(tool.Inputs))
			for _, in := range tool.Inputs {
				require.Contains(t, names, in.Name)
				require.Equal(t, "${{ inputs."+in.Name+" }}", step.Env[in.EnvName()])
			}
			require.Len(t, host.Outputs, len(container.Outputs))
			for name := range container.Outputs {
				require.Equal(t, "${{ steps."+step.ID+".outputs."+name+" }}", host.Outputs[name]["value"])
			}
		})
	}
}
