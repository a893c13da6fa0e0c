// Package kaniko translates kaniko's executor command line into
// build-push's flags, so that a pipeline written for
// `/kaniko/executor --context … --destination …` runs unchanged on hoist's
// image. Flags with the same meaning are passed on, renamed where the
// names differ; flags that mean nothing to hoist are accepted and named in
// a note; flags hoist cannot honour and unknown flags are errors naming
// the flag.
package kaniko

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// kind is what becomes of a kaniko flag.
type kind int

const (
	pass    kind = iota // build-push flag of the same meaning (to, or the same name)
	ignore              // accepted, no effect: note says why
	refuse              // a meaning hoist does not implement: an error
	special             // handled by Translate itself
)

// flag is one executor flag.
type flag struct {
	kind  kind
	value bool   // takes a value (else a boolean: --name or --name=true|false)
	to    string // build-push's name for pass (default: the same)
	note  string // why it has no effect (ignore) or what to do (refuse)
}

// flags are kaniko's executor flags (v1.24, with the camel-case spellings
// of older releases), by long name.
func flags() map[string]flag {
	same := func(value bool) flag { return flag{kind: pass, value: value} }
	to := func(name string, value bool) flag { return flag{kind: pass, value: value, to: name} }
	ign := func(value bool, note string) flag { return flag{kind: ignore, value: value, note: note} }
	const snapshot = "a RUN layer holds what the command changed, captured without hashing the whole filesystem"
	return map[string]flag{
		"context":                         same(true),
		"context-sub-path":                same(true),
		"dockerfile":                      same(true),
		"destination":                     same(true),
		"build-arg":                       same(true),
		"label":                           same(true),
		"target":                          same(true),
		"no-push":                         same(false),
		"tar-path":                        same(true),
		"tarPath":                         to("tar-path", true),
		"oci-layout-path":                 same(true),
		"digest-file":                     same(true),
		"image-name-with-digest-file":     same(true),
		"image-name-tag-with-digest-file": {kind: special, value: true},
		"cache":                           same(false),
		"cache-repo":                      same(true),
		"cache-ttl":                       same(true),
		"cache-run-layers":                same(false),
		"compression":                     same(true),
		"reproducible":                    same(false),
		"insecure":                        same(false),
		"insecure-pull":                   same(false),
		"skip-tls-verify":                 same(false),
		"skip-tls-verify-pull":            same(false),
		"insecure-registry":               to("insecure-registries", true),
		"skip-tls-verify-registry":        to("insecure-registries", true),
		"registry-mirror":                 same(true),
		"push-retry":                      same(true),
		"custom-platform":                 to("platforms", true),
		"customPlatform":                  to("platforms", true),
		"verbosity":                       {kind: special, value: true},
		"registry-certificate":            {kind: special, value: true},

		"cache-dir":                        ign(true, "kaniko's local base-image cache (warmer): base images are read from their registry, their layers only when a RUN needs them"),
		"cache-copy-layers":                ign(false, "with --cache, COPY layers are always cached"),
		"compressed-caching":               ign(false, "cached layers are stored as they are pushed"),
		"compression-level":                ign(true, "the compression level is build-push's own"),
		"snapshot-mode":                    ign(true, snapshot),
		"snapshotMode":                     ign(true, snapshot),
		"single-snapshot":                  ign(false, snapshot),
		"use-new-run":                      ign(false, snapshot),
		"cleanup":                          ign(false, "build-push never writes into its own root filesystem"),
		"ignore-path":                      ign(true, "RUN executes in a root of its own, never in the job container's"),
		"ignore-var-run":                   ign(false, "RUN executes in a root of its own, never in the job container's"),
		"kaniko-dir":                       ign(true, "build-push keeps its files in the temp directory (TMPDIR)"),
		"force":                            ign(false, "build-push runs anywhere, in a container or not"),
		"force-build-metadata":             ign(false, "metadata instructions make no layer, as with Docker"),
		"image-fs-extract-retry":           ign(true, "registry requests are retried (--push-retry)"),
		"image-download-retry":             ign(true, "registry requests are retried (--push-retry)"),
		"log-format":                       ign(true, "the log follows the CI platform's format"),
		"log-timestamp":                    ign(false, "the log follows the CI platform's format"),
		"skip-unused-stages":               ign(false, "stages the target does not need are always skipped"),
		"skip-push-permission-check":       ign(false, "the push itself reports a missing permission"),
		"push-ignore-immutable-tag-errors": ign(false, "a tag that already holds the image is left as it is"),
		"no-push-cache":                    ign(false, "with --cache, cache entries are written as the build goes"),
		"preserve-context":                 ign(false, "the context is never changed by the build"),
		"skip-default-registry-fallback":   ign(false, "Docker Hub is still tried after the --registry-mirror list"),
		"git":                              ign(true, "give the branch in the context: git://host/repo.git#refs/heads/BRANCH"),

		"registry-map":         {kind: refuse, value: true, note: "rewrite the references in the Dockerfile (FROM, COPY --from) or use --registry-mirror for Docker Hub"},
		"registry-client-cert": {kind: refuse, value: true, note: "client certificates (mutual TLS) are not supported"},
	}
}

// short are kaniko's one-letter flags.
var short = map[string]string{"c": "context", "d": "destination", "f": "dockerfile", "v": "verbosity", "h": "help"}

// Translation is an executor command line as build-push runs it.
type Translation struct {
	// Args are build-push's flags.
	Args []string
	// Notes name the flags accepted without effect, one line each.
	Notes []string
	// ImageNameTagWithDigestFile is kaniko's file of
	// `repo:tag@sha256:…` lines, written after the push.
	ImageNameTagWithDigestFile string
	// Debug is set by --verbosity debug or trace.
	Debug bool
	// CertificateDirs are the directories of --registry-certificate
	// files, to trust as CAs (SSL_CERT_DIR).
	CertificateDirs []string
	// Help and Version: `--help`, and `version` (kaniko's subcommand).
	Help, Version bool
}

// Translate reads kaniko's executor arguments.
func Translate(args []string) (Translation, error) {
	var t Translation
	known := flags()
	if len(args) > 0 && args[0] == "version" {
		t.Version = true
		return t, nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			if i+1 < len(args) {
				return t, fmt.Errorf("unexpected argument %q: the executor takes flags only", args[i+1])
			}
			break
		}
		var name, value string
		var hasValue bool
		switch {
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue = strings.Cut(arg[2:], "=")
		case strings.HasPrefix(arg, "-") && len(arg) > 1:
			long, ok := short[arg[1:2]]
			if !ok {
				return t, fmt.Errorf("unknown flag -%s: kaniko's short flags are -c (--context), -d (--destination), -f (--dockerfile), -v (--verbosity)", arg[1:2])
			}
			name = long
			if rest := arg[2:]; rest != "" {
				value, hasValue = strings.TrimPrefix(rest, "="), true
			}
		default:
			return t, fmt.Errorf("unexpected argument %q: the executor takes flags only (--name value)", arg)
		}
		if name == "help" {
			t.Help = true
			continue
		}
		f, ok := known[name]
		if !ok {
			return t, unknownFlag(name, known)
		}
		if f.value && !hasValue {
			if i+1 >= len(args) {
				return t, fmt.Errorf("flag --%s needs a value: --%s VALUE or --%s=VALUE", name, name, name)
			}
			i++
			value = args[i]
		}
		if !f.value {
			if !hasValue {
				value = "true"
			}
			if value != "true" && value != "false" {
				return t, fmt.Errorf("flag --%s is a boolean: give --%s, --%s=true or --%s=false", name, name, name, name)
			}
		}
		switch f.kind {
		case pass:
			n := f.to
			if n == "" {
				n = name
			}
			t.Args = append(t.Args, "--"+n+"="+value)
		case ignore:
			t.Notes = append(t.Notes, fmt.Sprintf("--%s: accepted for kaniko compatibility, no effect: %s", name, f.note))
		case refuse:
			return t, fmt.Errorf("flag --%s is not supported: %s", name, f.note)
		case special:
			if err := t.special(name, value); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

func (t *Translation) special(name, value string) error {
	switch name {
	case "image-name-tag-with-digest-file":
		t.ImageNameTagWithDigestFile = value
	case "verbosity":
		switch strings.ToLower(value) {
		case "trace", "debug":
			t.Debug = true
		case "info", "warn", "warning", "error", "fatal", "panic":
		default:
			return fmt.Errorf("flag --verbosity: %q is not a level: give trace, debug, info, warn, error, fatal or panic", value)
		}
	case "registry-certificate":
		host, path, ok := strings.Cut(value, "=")
		if !ok || host == "" || path == "" {
			return fmt.Errorf("flag --registry-certificate: %q: write REGISTRY=/path/to/ca.crt", value)
		}
		dir := filepath.Dir(path)
		t.CertificateDirs = append(t.CertificateDirs, dir)
		t.Notes = append(t.Notes, fmt.Sprintf("--registry-certificate %s: every certificate in %s is trusted as a CA (SSL_CERT_DIR), for every registry", host, dir))
	}
	return nil
}

// unknownFlag names the flag and the nearest known one.
func unknownFlag(name string, known map[string]flag) error {
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasPrefix(n, name) || strings.HasPrefix(name, n) {
			return fmt.Errorf("unknown flag --%s (not a kaniko executor flag hoist knows; did you mean --%s?): see docs/kaniko-migration.md", name, n)
		}
	}
	return fmt.Errorf("unknown flag --%s (not a kaniko executor flag hoist knows): see docs/kaniko-migration.md for the flags the executor takes", name)
}
