// Package publishhelm is the publish-helm command: it renders a Helm chart to plain manifests for publish
// (render: helm). It holds the Helm template engine and the Kubernetes
// client libraries it links, so that publish itself stays small and quick
// to start; publish runs it only to render a chart. Values come as JSON on
// standard input; errors go to standard error.
//
//	publish-helm --chart DIR --out DIR --release NAME --namespace NS < values.json
package publishhelm

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hoist-ci/hoist/internal/helmrender"
)

// Main is publish-helm's main with the process's arguments (without the
// program name). It returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, args, os.Stdin)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Run renders the chart the flags name with the values on stdin.
func Run(ctx context.Context, args []string, stdin io.Reader) error {
	var req helmrender.Request
	fl := flag.NewFlagSet("publish-helm", flag.ContinueOnError)
	fl.StringVar(&req.Chart, "chart", "", "chart directory")
	fl.StringVar(&req.Out, "out", "", "output directory")
	fl.StringVar(&req.Release, "release", "", "release name")
	fl.StringVar(&req.Namespace, "namespace", "default", "release namespace")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if req.Chart == "" || req.Out == "" || req.Release == "" {
		return fmt.Errorf("publish-helm: --chart, --out and --release are required (publish runs this binary for render: helm)")
	}
	if err := json.NewDecoder(stdin).Decode(&req.Values); err != nil && err != io.EOF {
		return fmt.Errorf("publish-helm: reading the values (JSON) from standard input: %w", err)
	}
	return helmrender.Render(ctx, req)
}
