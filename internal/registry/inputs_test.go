package registry

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeInputs is a tool's inputs as the platform layer would answer them.
type fakeInputs struct {
	values map[string]string
	env    map[string]string
	masked []string
}

func (f *fakeInputs) String(name string) string { return f.values[name] }
func (f *fakeInputs) List(name string) []string {
	if v := f.values[name]; v != "" {
		return []string{v}
	}
	return nil
}
func (f *fakeInputs) Bool(name string) (bool, error) { return f.values[name] == "true", nil }
func (f *fakeInputs) Getenv(key string) string       { return f.env[key] }
func (f *fakeInputs) Mask(secret string)             { f.masked = append(f.masked, secret) }
func (f *fakeInputs) RegistryCredential(string) (string, string, string, bool) {
	return "", "", "", false
}

func TestFromInputsMasksSecretsInsideRegistryAuth(t *testing.T) {
	const canary = "CANARY-robot-secret-91c2"
	cfg := `{"auths":{"harbor.example.com":{"username":"robot$ci","password":"` + canary + `"}}}`
	in := &fakeInputs{
		values: map[string]string{
			"registry-auth":       base64.StdEncoding.EncodeToString([]byte(cfg)),
			"insecure-registries": "127.0.0.1:5000",
		},
		env: map[string]string{"DOCKER_AUTH_CONFIG": `{"auths":{"r.example.com":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("u:CANARY-2")) + `"}}}`},
	}
	c, err := FromInputs(in, "hoist/test", nil)
	require.NoError(t, err)
	require.Contains(t, in.masked, canary, "a password inside base64 registry-auth is masked")
	require.Contains(t, in.masked, "CANARY-2", "a password inside DOCKER_AUTH_CONFIG is masked")
	require.True(t, c.IsInsecure("127.0.0.1:5000"))
}

func TestFromInputsNamesAHalfSetCredential(t *testing.T) {
	_, err := FromInputs(&fakeInputs{values: map[string]string{"username": "ci"}}, "hoist/test", nil)
	require.ErrorContains(t, err, `"username" is set but "password" is empty`)
}
