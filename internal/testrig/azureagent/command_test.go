package azureagent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseCommandAgentVectors are the cases of the agent's own parser test
// (src/Test/L0/Worker/LoggingCommandL0.cs, CommandParserTest), with percent
// decoding on, plus the cases hoist relies on.
func TestParseCommandAgentVectors(t *testing.T) {
	tests := []struct {
		line string
		want Command
		ok   bool
	}{
		{"##vso[area.event k1=v1;]msg", Command{Area: "area", Event: "event", Properties: map[string]string{"k1": "v1"}, Data: "msg"}, true},
		{"##vso[area.event]", Command{Area: "area", Event: "event", Properties: map[string]string{}}, true},
		{"##vso[area.event k1=%3B=%0D=%0A=%5D%AZP25;]%3B-%0D-%0A-%5D%AZP253B",
			Command{Area: "area", Event: "event", Properties: map[string]string{"k1": ";=\r=\n=]%"}, Data: ";-\r-\n-]%3B"}, true},
		{"##vso[area.event k1=;k2=;]", Command{Area: "area", Event: "event", Properties: map[string]string{}}, true},
		{">>>   ##vso[area.event k1=v1;]msg", Command{Area: "area", Event: "event", Properties: map[string]string{"k1": "v1"}, Data: "msg"}, true},
		// Beyond the agent's vectors: property names ignore case, a value
		// keeps everything after its first "=", the data keeps a second
		// command, and a malformed command is no command.
		{"##vso[task.setvariable Variable=a=b;isOutput=true]x]y##vso[task.debug]z",
			Command{Area: "task", Event: "setvariable", Properties: map[string]string{"variable": "a=b", "isoutput": "true"}, Data: "x]y##vso[task.debug]z"}, true},
		{"##vso[task]x", Command{}, false},
		{"##vso[a.b.c]x", Command{}, false},
		{"##vso[task.debug x", Command{}, false},
		{"#\u200b#vso[task.debug]ignorable characters do not hide a command", Command{Area: "task", Event: "debug", Properties: map[string]string{}, Data: "ignorable characters do not hide a command"}, true},
		{"＃#vso[task.debug]x", Command{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseCommand(tt.line)
		require.Equal(t, tt.ok, ok, tt.line)
		if ok {
			require.Equal(t, tt.want, got, tt.line)
		}
	}
}

func TestProcess(t *testing.T) {
	out := "##vso[task.setsecret]s3cr3t\n" +
		"login with s3cr3t\n" +
		"##[group]Build\n" +
		"##vso[task.logissue type=error;sourcepath=Dockerfile;linenumber=3;columnnumber=1;]bad s3cr3t\n" +
		"##vso[task.logissue type=notice]no such level\n" +
		"##[endgroup]\n" +
		"##vso[task.setvariable variable=digest;isOutput=true]sha256:abc\n" +
		"##vso[nope.event]x\n" +
		"text with ##vso but no command\n"
	o := Process(out, nil)
	require.Equal(t, []string{"s3cr3t"}, o.Secrets)
	require.Empty(t, o.CommandBeforeSecret)
	require.Equal(t, []Issue{{Type: "error", SourcePath: "Dockerfile", Line: 3, Col: 1, Message: "bad ***"}}, o.Issues)
	require.Equal(t, map[string]Variable{"digest": {Value: "sha256:abc", Output: true}}, o.Variables)
	require.Equal(t, []string{"Build"}, o.Groups)
	require.Zero(t, o.Open)
	require.Len(t, o.Failures, 1)
	require.Len(t, o.Warnings, 2)
	require.Contains(t, o.Text(), "login with ***")
	require.NotContains(t, o.Text(), "s3cr3t")
}
