// Command mkimage assembles the hoist image without a Docker daemon, from
// Debian's busybox-static, the host's CA certificates and locally built
// static binaries, with go-containerregistry. It is the test rig's stand-in
// for the Dockerfile (same paths, same config) until build-push can build
// that Dockerfile; without --binaries it makes a plain busybox base image
// (act's -P ubuntu-latest= image, gitlab-ci-local's --helper-image).
//
//	mkimage --binaries bin --tarball .cache/image.tar   # tagged ghcr.io/hoist-ci/hoist:<spec.Version>
//	mkimage --tag hoist-rig/busybox:latest --tarball .cache/busybox.tar
//	mkimage --tag hoist-rig/helper:latest --host-binary /bin/bash --host-binary /usr/bin/rsync --tarball .cache/helper.tar
//	mkimage --binaries bin --tag 127.0.0.1:5000/hoist:dev --push
//
// The output is reproducible: every timestamp is SOURCE_DATE_EPOCH (default 0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hoist-ci/hoist/internal/spec"
)

// options are mkimage's flags.
type options struct {
	Binaries      string
	HostBinaries  []string
	Busybox       string
	CACertificate string
	Tags          []string
	Tarball       string
	Layout        string
	Push          bool
	Title         string
	Version       string
	Epoch         time.Time
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	opts, err := parseFlags(args, getenv)
	if err != nil {
		return err
	}
	img, err := build(opts)
	if err != nil {
		return err
	}
	return write(ctx, img, opts, stdout)
}

func parseFlags(args []string, getenv func(string) string) (options, error) {
	var opts options
	var tags, hostBins stringList
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.StringVar(&opts.Binaries, "binaries", "", "directory of static binaries to install in /usr/local/bin (none: a plain busybox base image)")
	fs.Var(&hostBins, "host-binary", "absolute path of a host executable to install at the same path, with the shared libraries it loads (repeatable; for the rig's helper images)")
	fs.StringVar(&opts.Busybox, "busybox", "/bin/busybox", "static busybox binary (Debian package busybox-static)")
	fs.StringVar(&opts.CACertificate, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle installed as "+caBundlePath)
	fs.Var(&tags, "tag", "image reference to name the image (repeatable; default with --binaries: "+spec.Image()+")")
	fs.StringVar(&opts.Tarball, "tarball", "", "write a docker-loadable tarball (`docker load -i PATH`)")
	fs.StringVar(&opts.Layout, "layout", "", "write (or add to) an OCI image layout directory")
	fs.BoolVar(&opts.Push, "push", false, "push every --tag to its registry (loopback registries over plain HTTP)")
	fs.StringVar(&opts.Title, "title", "", "org.opencontainers.image.title (default: hoist, or hoist-rig-busybox without --binaries)")
	fs.StringVar(&opts.Version, "version", spec.Version, "org.opencontainers.image.version")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments %q: every option is a flag (see -h)", fs.Args())
	}
	opts.Tags = tags
	opts.HostBinaries = hostBins
	if len(opts.Tags) == 0 && opts.Binaries != "" {
		opts.Tags = []string{spec.Image()}
	}
	if len(opts.Tags) == 0 && (opts.Tarball != "" || opts.Push) {
		return opts, errors.New("--tarball and --push need at least one --tag NAME (a base image without --binaries has no default name)")
	}
	if opts.Tarball == "" && opts.Layout == "" && !opts.Push {
		return opts, errors.New("nothing to write: give --tarball PATH, --layout DIR or --push")
	}
	if opts.Title == "" {
		opts.Title = "hoist"
		if opts.Binaries == "" {
			opts.Title = "hoist-rig-busybox"
		}
	}
	epoch, err := sourceDateEpoch(getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return opts, err
	}
	opts.Epoch = epoch
	return opts, nil
}

func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: set it to e.g. $(git log -1 --format=%%ct) or unset it", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func write(ctx context.Context, img v1.Image, opts options, stdout io.Writer) error {
	refs := make(map[name.Reference]v1.Image, len(opts.Tags))
	tags := make([]name.Tag, 0, len(opts.Tags))
	for _, t := range opts.Tags {
		tag, err := name.NewTag(t)
		if err != nil {
			return fmt.Errorf("parsing --tag %q: %w", t, err)
		}
		refs[tag] = img
		tags = append(tags, tag)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("computing the image digest: %w", err)
	}
	if opts.Tarball != "" {
		if err := tarball.MultiRefWriteToFile(opts.Tarball, refs); err != nil {
			return fmt.Errorf("writing tarball %s: %w", opts.Tarball, err)
		}
		fmt.Fprintf(stdout, "wrote %s (%s) %s\n", opts.Tarball, strings.Join(opts.Tags, ", "), digest)
	}
	if opts.Layout != "" {
		if err := writeLayout(opts.Layout, img, opts.Tags); err != nil {
			return fmt.Errorf("writing OCI layout %s: %w", opts.Layout, err)
		}
		fmt.Fprintf(stdout, "wrote OCI layout %s %s\n", opts.Layout, digest)
	}
	if opts.Push {
		for _, tag := range tags {
			if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("pushing %s: %w", tag, err)
			}
			fmt.Fprintf(stdout, "pushed %s@%s\n", tag, digest)
		}
	}
	return nil
}

func writeLayout(dir string, img v1.Image, tags []string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	var annotations []layout.Option
	for _, t := range tags {
		annotations = append(annotations, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": t}))
	}
	return p.AppendImage(img, annotations...)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
