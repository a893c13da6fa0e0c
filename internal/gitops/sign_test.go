package gitops

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

// pgpKey returns an armored private key (encrypted with passphrase when
// given) and its armored public key.
func pgpKey(t *testing.T, passphrase string) (private, public string) {
	t.Helper()
	e, err := openpgp.NewEntity("hoist signer", "", "signer@example.com", nil)
	require.NoError(t, err)
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	require.NoError(t, err)
	require.NoError(t, e.Serialize(w))
	require.NoError(t, w.Close())
	if passphrase != "" {
		require.NoError(t, e.EncryptPrivateKeys([]byte(passphrase), nil))
	}
	var priv bytes.Buffer
	w, err = armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	require.NoError(t, err)
	require.NoError(t, e.SerializePrivateWithoutSigning(w, nil))
	require.NoError(t, w.Close())
	return priv.String(), pub.String()
}

// sshKey returns an OpenSSH private key (encrypted when passphrase is
// given) and its authorized_keys line.
func sshKey(t *testing.T, kind, passphrase string) (private, public string) {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	require.NoError(t, err)
	var block *pem.Block
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(k, "", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(k, "")
	}
	require.NoError(t, err)
	pub, err := ssh.NewPublicKey(k.Public())
	require.NoError(t, err)
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func landSigned(t *testing.T, key, passphrase string) (bare string, commit string) {
	t.Helper()
	bare = gittest.BareRepo(t, t.TempDir(), "gitops", map[string]string{"list.txt": "seed\n"})
	signer, err := NewSigner(key, passphrase)
	require.NoError(t, err)
	res, err := Land(context.Background(), Options{
		URL: "file://" + bare, Branch: "main", AuthorName: "hoist", AuthorEmail: "signer@example.com",
		Signer: signer, Edit: appendLine("list.txt", "signed"),
	})
	require.NoError(t, err)
	require.True(t, res.Changed)
	return bare, res.Commit
}

func TestLandSignsWithOpenPGP(t *testing.T) {
	for _, passphrase := range []string{"", "s3cret pass"} {
		t.Run("passphrase="+passphrase, func(t *testing.T) {
			priv, pub := pgpKey(t, passphrase)
			bare, sha := landSigned(t, priv, passphrase)
			repo, err := git.PlainOpen(bare)
			require.NoError(t, err)
			c, err := repo.CommitObject(plumbing.NewHash(sha))
			require.NoError(t, err)
			require.Contains(t, c.PGPSignature, "-----BEGIN PGP SIGNATURE-----")
			e, err := c.Verify(pub)
			require.NoError(t, err)
			require.Contains(t, e.Identities, "hoist signer <signer@example.com>")
			// A different key does not verify it.
			_, other := pgpKey(t, "")
			_, err = c.Verify(other)
			require.Error(t, err)
		})
	}
}

func TestLandSignsWithSSH(t *testing.T) {
	for _, tc := range []struct{ kind, passphrase string }{
		{"ed25519", ""},
		{"ed25519", "s3cret pass"},
		{"rsa", ""},
	} {
		t.Run(tc.kind+"/passphrase="+tc.passphrase, func(t *testing.T) {
			priv, pub := sshKey(t, tc.kind, tc.passphrase)
			bare, sha := landSigned(t, priv, tc.passphrase)
			allowed := filepath.Join(t.TempDir(), "allowed_signers")
			require.NoError(t, os.WriteFile(allowed, []byte("signer@example.com "+pub+"\n"), 0o600))
			out := gittest.Git(t, bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "--raw", sha)
			require.Contains(t, out, `Good "git" signature for signer@example.com`)
			// Another key is not trusted for the same commit.
			_, other := sshKey(t, "ed25519", "")
			require.NoError(t, os.WriteFile(allowed, []byte("signer@example.com "+other+"\n"), 0o600))
			require.Error(t, gitErr(bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", sha))
		})
	}
}

// gitErr runs git and returns its error (for expected failures).
func gitErr(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	return cmd.Run()
}

func TestNewSignerRefusesBadKeysWithoutQuotingThem(t *testing.T) {
	pgpPriv, pgpPub := pgpKey(t, "right")
	sshPriv, _ := sshKey(t, "ed25519", "right")
	sshPlain, _ := sshKey(t, "ed25519", "")
	for _, tc := range []struct{ name, key, passphrase, want string }{
		{"empty", "", "", "empty"},
		{"garbage", "CANARY-not-a-key", "", "neither an armored OpenPGP private key"},
		{"pgp public key", pgpPub, "", "public key was given"},
		{"pgp wrong passphrase", pgpPriv, "wrong", "passphrase does not decrypt the OpenPGP key"},
		{"pgp missing passphrase", pgpPriv, "", "no passphrase was given"},
		{"pgp truncated", pgpPriv[:len(pgpPriv)/2] + "\n-----END PGP PRIVATE KEY BLOCK-----\n", "right", "reading the OpenPGP key"},
		{"ssh wrong passphrase", sshPriv, "wrong", "passphrase does not decrypt the SSH key"},
		{"ssh missing passphrase", sshPriv, "", "no passphrase was given"},
		{"ssh truncated", sshPlain[:len(sshPlain)/2] + "\n-----END OPENSSH PRIVATE KEY-----\n", "", "reading the SSH key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSigner(tc.key, tc.passphrase)
			require.ErrorIs(t, err, ErrSigningKey)
			require.ErrorContains(t, err, tc.want)
			msg := err.Error()
			require.NotContains(t, msg, "CANARY")
			require.NotContains(t, msg, "right")
			for _, line := range strings.Split(tc.key, "\n") {
				if len(line) > 16 && !strings.HasPrefix(line, "-----") {
					require.NotContains(t, msg, line)
				}
			}
		})
	}
}
