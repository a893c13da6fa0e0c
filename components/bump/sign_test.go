package bump

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

func TestRunSignsTheCommitWithAnSSHKey(t *testing.T) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(k, "", []byte("pass phrase"))
	require.NoError(t, err)
	pub, err := ssh.NewPublicKey(k.Public())
	require.NoError(t, err)

	bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
	o := opts(bare)
	o.SigningKey, o.SigningKeyPassphrase = string(pem.EncodeToMemory(block)), "pass phrase"
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.True(t, res.Changed)

	allowed := filepath.Join(t.TempDir(), "allowed_signers")
	require.NoError(t, os.WriteFile(allowed, []byte("bot@example.com "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))+"\n"), 0o600))
	out := gittest.Git(t, bare, "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "--raw", res.Commit)
	require.Contains(t, out, `Good "git" signature for bot@example.com`)
}

func TestRunRefusesAnUnusableSigningKeyBeforeCloning(t *testing.T) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(k, "", []byte("CANARY-right"))
	require.NoError(t, err)
	key := string(pem.EncodeToMemory(block))
	for _, tc := range []struct{ name, key, passphrase, want string }{
		{"malformed", "CANARY-key-material", "", "signing-key: unusable signing key: neither"},
		{"wrong passphrase", key, "CANARY-wrong", "signing-key: unusable signing key: the passphrase does not decrypt the SSH key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(filepath.Join(t.TempDir(), "none.git")) // not cloned: the key is checked first
			o.SigningKey, o.SigningKeyPassphrase = tc.key, tc.passphrase
			_, err := Run(context.Background(), o)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "CANARY")
			require.NotContains(t, err.Error(), strings.Split(key, "\n")[1])
		})
	}
}
