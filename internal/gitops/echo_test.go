package gitops

import (
	"context"
	"errors"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const echoToken = "CANARY-gitops-7e21-token"

// A git server or a forge API that echoes the credentials back (header,
// body, decoded) gets none of them into an error, in any encoding.
func TestEchoedCredentialsNeverReachAnError(t *testing.T) {
	echo := testrig.EchoServer(t, testrig.EchoOptions{})
	_, err := Land(context.Background(), Options{
		URL: echo.URL + "/o/r.git", Branch: "main", Auth: &githttp.BasicAuth{Username: "x-access-token", Password: echoToken},
		Edit: func(context.Context, Snapshot, string) (map[string][]byte, string, error) { return nil, "", nil },
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "you sent", "the echo reached the error, redacted")
	require.Empty(t, testrig.Leaks(err.Error(), nil, echoToken), err.Error())

	for _, kind := range []string{"github", "gitlab"} {
		api := echo.URL + "/api/v3/"
		if kind == "gitlab" {
			api = echo.URL + "/api/v4"
		}
		f, err := NewForge(ForgeOptions{Kind: kind, APIURL: api, RepositoryURL: echo.URL + "/o/r.git", Token: echoToken})
		require.NoError(t, err)
		_, err = f.Find(context.Background(), "hoist/bump/app", "main")
		require.Error(t, err, kind)
		require.Contains(t, err.Error(), "you sent", kind)
		require.Empty(t, testrig.Leaks(err.Error(), nil, echoToken), "%s: %s", kind, err)
		var plain interface{ Unwrap() error }
		require.True(t, errors.As(err, &plain), "the forge's error stays reachable")
	}
}
