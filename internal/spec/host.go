package spec

import (
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// HostActionPath is where a tool's host action lives:
// uses: hoist-ci/hoist/actions/<tool>/host@v0.
func HostActionPath(t Tool) string { return path.Join("actions", t.Name, "host", "action.yml") }

// HostScript is the script every host action runs, relative to the
// repository root: it installs the release's static binaries on the runner
// (cached per version in the runner's tool cache) and runs the tool.
const HostScript = "actions/run-on-host.sh"

// ReleaseURL is where the release workflow publishes the binaries:
// <ReleaseURL>/v<version>/hoist_<version>_linux_<arch>.tar.gz and checksums.txt.
const ReleaseURL = "https://github.com/hoist-ci/hoist/releases/download"

// HostActionYAML renders a tool's composite "host" action: the same inputs
// and outputs as its container action, but the tool runs as the static
// binary on the runner itself (no container), taken from the GitHub release
// of Version and kept in $RUNNER_TOOL_CACHE/hoist/<version>/<arch>.
//
// A composite action gets no INPUT_<NAME> variables, so the step sets each
// one as INPUT_<UPPER_SNAKE>, and HOIST_INPUTS lists the input names: a
// POSIX shell cannot pass on the hyphenated names a container action gets
// (INPUT_CACHE-REPO), so the script hands them to the tool with env(1).
func HostActionYAML(t Tool) ([]byte, error) {
	icon, color := t.Icon, t.Color
	if icon == "" {
		icon = "box"
	}
	if color == "" {
		color = "blue"
	}
	outputs := mapping()
	for _, out := range t.Outputs {
		outputs.Content = append(outputs.Content, str(out.Name), mapping(
			str("description"), str(sentence(out.Description)),
			str("value"), str("${{ steps.run.outputs."+out.Name+" }}"),
		))
	}
	env := mapping(
		str("HOIST_VERSION"), str(Version),
		// GITHUB_ACTION_PATH is this action's directory, actions/<tool>/host.
		str("HOIST_SCRIPT"), str("${{ github.action_path }}/../../run-on-host.sh"),
	)
	var names []string
	for _, in := range t.Inputs {
		names = append(names, in.Name)
	}
	env.Content = append(env.Content, str("HOIST_INPUTS"), str(strings.Join(names, " ")))
	for _, in := range t.Inputs {
		env.Content = append(env.Content, str(in.EnvName()), str("${{ inputs."+in.Name+" }}"))
	}
	step := mapping(
		str("id"), str("run"),
		str("shell"), str("sh"),
		str("env"), env,
		str("run"), str(`sh "$HOIST_SCRIPT" `+t.Name),
	)
	doc := mapping(
		str("name"), str("hoist "+t.Name+" (host)"),
		str("description"), str(t.Description+" Runs hoist's static binary on the runner, not in a container."),
		str("author"), str(Author),
		str("branding"), mapping(str("icon"), str(icon), str("color"), str(color)),
	)
	if inputs := actionInputs(t); len(inputs.Content) > 0 {
		doc.Content = append(doc.Content, str("inputs"), inputs)
	}
	if len(outputs.Content) > 0 {
		doc.Content = append(doc.Content, str("outputs"), outputs)
	}
	doc.Content = append(doc.Content, str("runs"), mapping(
		str("using"), str("composite"),
		str("steps"), &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{step}},
	))
	body, err := encodeYAML(doc)
	if err != nil {
		return nil, fmt.Errorf("rendering the host action.yml of %s: %w", t.Name, err)
	}
	return append([]byte("# "+GeneratedHeader+".\n"), body...), nil
}
