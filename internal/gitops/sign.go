package gitops

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/hoist-ci/hoist/internal/redact"
	"golang.org/x/crypto/ssh"
)

// Signer signs the encoded commit (without its signature header) and returns
// the armored signature git stores in the commit's gpgsig header.
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
}

// ErrSigningKey marks a signing key that cannot be used; its message never
// quotes the key.
var ErrSigningKey = errors.New("unusable signing key")

// NewSigner reads a private signing key: an armored OpenPGP private key
// (git's gpg.format=openpgp) or an OpenSSH/PEM private key (gpg.format=ssh,
// an SSHSIG signature in namespace "git"). The kind is detected from the
// key. The passphrase decrypts an encrypted key; it is ignored otherwise.
func NewSigner(key, passphrase string) (Signer, error) {
	key = strings.TrimSpace(key)
	switch {
	case key == "":
		return nil, fmt.Errorf("%w: the key is empty", ErrSigningKey)
	case strings.Contains(key, "-----BEGIN PGP PRIVATE KEY BLOCK-----"):
		return newPGPSigner(key, passphrase)
	case strings.Contains(key, "-----BEGIN PGP PUBLIC KEY BLOCK-----"):
		return nil, fmt.Errorf("%w: an OpenPGP public key was given; the private key is needed (gpg --armor --export-secret-keys)", ErrSigningKey)
	case strings.Contains(key, "PRIVATE KEY-----"):
		return newSSHSigner(key, passphrase)
	default:
		return nil, fmt.Errorf("%w: neither an armored OpenPGP private key (-----BEGIN PGP PRIVATE KEY BLOCK-----) nor an OpenSSH/PEM private key (-----BEGIN OPENSSH PRIVATE KEY-----)", ErrSigningKey)
	}
}

type pgpSigner struct{ entity *openpgp.Entity }

func newPGPSigner(key, passphrase string) (Signer, error) {
	ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(key))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the OpenPGP key: %s", ErrSigningKey, redact.FirstLine(err.Error()))
	}
	if len(ring) != 1 {
		return nil, fmt.Errorf("%w: %d OpenPGP keys given, exactly one is needed", ErrSigningKey, len(ring))
	}
	e := ring[0]
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("%w: the OpenPGP key has no private part", ErrSigningKey)
	}
	encrypted := e.PrivateKey.Encrypted
	for _, s := range e.Subkeys {
		encrypted = encrypted || (s.PrivateKey != nil && s.PrivateKey.Encrypted)
	}
	if encrypted {
		if passphrase == "" {
			return nil, fmt.Errorf("%w: the OpenPGP key is encrypted and no passphrase was given (set signing-key-passphrase)", ErrSigningKey)
		}
		if err := e.DecryptPrivateKeys([]byte(passphrase)); err != nil {
			return nil, fmt.Errorf("%w: the passphrase does not decrypt the OpenPGP key", ErrSigningKey)
		}
	}
	if _, ok := e.SigningKey(time.Now()); !ok {
		return nil, fmt.Errorf("%w: the OpenPGP key has no valid signing (sub)key", ErrSigningKey)
	}
	return pgpSigner{e}, nil
}

func (s pgpSigner) Sign(message io.Reader) ([]byte, error) {
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, s.entity, message, &packet.Config{}); err != nil {
		return nil, fmt.Errorf("signing with the OpenPGP key: %w", err)
	}
	return b.Bytes(), nil
}

type sshSigner struct{ signer ssh.Signer }

func newSSHSigner(key, passphrase string) (Signer, error) {
	s, err := ssh.ParsePrivateKey([]byte(key))
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing) && passphrase == "":
		return nil, fmt.Errorf("%w: the SSH key is encrypted and no passphrase was given (set signing-key-passphrase)", ErrSigningKey)
	case errors.As(err, &missing):
		if s, err = ssh.ParsePrivateKeyWithPassphrase([]byte(key), []byte(passphrase)); err != nil {
			return nil, fmt.Errorf("%w: the passphrase does not decrypt the SSH key", ErrSigningKey)
		}
	case err != nil:
		return nil, fmt.Errorf("%w: reading the SSH key: %s", ErrSigningKey, redact.FirstLine(err.Error()))
	}
	return sshSigner{s}, nil
}

// Sign writes an SSHSIG signature (OpenSSH PROTOCOL.sshsig) over the
// message in the "git" namespace with SHA-512, as `git -c gpg.format=ssh`
// does, armored like ssh-keygen -Y sign.
func (s sshSigner) Sign(message io.Reader) ([]byte, error) {
	const namespace, hashAlg = "git", "sha512"
	h := sha512.New()
	if _, err := io.Copy(h, message); err != nil {
		return nil, err
	}
	signed := sshsigBlob(
		[]byte(namespace), nil, []byte(hashAlg), h.Sum(nil),
	)
	var sig *ssh.Signature
	var err error
	if as, ok := s.signer.(ssh.AlgorithmSigner); ok && s.signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		// RSA needs rsa-sha2-512: ssh-rsa (SHA-1) signatures are refused.
		sig, err = as.SignWithAlgorithm(rand.Reader, signed, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = s.signer.Sign(rand.Reader, signed)
	}
	if err != nil {
		return nil, fmt.Errorf("signing with the SSH key: %w", err)
	}
	var blob bytes.Buffer
	blob.WriteString("SSHSIG")
	_ = binary.Write(&blob, binary.BigEndian, uint32(1))
	for _, f := range [][]byte{s.signer.PublicKey().Marshal(), []byte(namespace), nil, []byte(hashAlg), ssh.Marshal(sig)} {
		writeString(&blob, f)
	}
	enc := base64.StdEncoding.EncodeToString(blob.Bytes())
	var out strings.Builder
	out.WriteString("-----BEGIN SSH SIGNATURE-----\n")
	for len(enc) > 70 {
		out.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	out.WriteString(enc + "\n-----END SSH SIGNATURE-----\n")
	return []byte(out.String()), nil
}

// sshsigBlob is the data an SSHSIG signature covers.
func sshsigBlob(namespace, reserved, hashAlg, digest []byte) []byte {
	var b bytes.Buffer
	b.WriteString("SSHSIG")
	for _, f := range [][]byte{namespace, reserved, hashAlg, digest} {
		writeString(&b, f)
	}
	return b.Bytes()
}

func writeString(b *bytes.Buffer, s []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.Write(s)
}
