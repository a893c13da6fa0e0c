package registry_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const echoCanary = "CANARY-echo-3c1d-pass"

// A registry that echoes the Authorization header back (in a header, in
// the body as text or as a registry JSON error, decoded) gets no
// credential into an error, in any encoding; hoist hands every credential
// it sends to Options.Mask.
func TestEchoedCredentialsNeverReachAnError(t *testing.T) {
	for _, bearer := range []bool{false, true} {
		echo := testrig.EchoServer(t, testrig.EchoOptions{Bearer: bearer})
		var mu sync.Mutex
		var masked []string
		logger, logs := newLogger()
		c := newClient(t, registry.Options{Username: "ci", Password: echoCanary, Insecure: []string{echo.Host}, Retry: fast, Log: logger,
			Mask: func(s string) { mu.Lock(); masked = append(masked, s); mu.Unlock() }})
		r := ref(t, c, echo.Host+"/team/app:1")
		img, err := random.Image(64, 1)
		require.NoError(t, err)
		var errs []string
		for _, op := range []func() error{
			func() error {
				_, err := remote.Get(r, c.RemoteOptions(t.Context(), r.Context().Registry)...)
				return err
			},
			func() error {
				_, err := remote.List(r.Context(), c.RemoteOptions(t.Context(), r.Context().Registry)...)
				return err
			},
			func() error { return remote.Write(r, img, c.RemoteOptions(t.Context(), r.Context().Registry)...) },
		} {
			err := op()
			require.Error(t, err)
			errs = append(errs, c.Explain(err, r.Context(), registry.Read).Error())
		}
		all := strings.Join(errs, "\n") + logs.String()
		require.Contains(t, all, "you sent", "the echo reached the error, redacted")
		require.Empty(t, testrig.Leaks(all, []string{"ci"}, echoCanary), "bearer=%v:\n%s", bearer, all)
		if bearer {
			require.NotContains(t, all, echo.Token)
		}
		mu.Lock()
		require.Contains(t, masked, echoCanary, "the password is handed to Mask")
		if bearer {
			require.Contains(t, masked, echo.Token, "a bearer token from a token server is handed to Mask")
		}
		mu.Unlock()
	}
}
