// Command publish-helm renders a Helm chart to plain manifests for publish
// (render: helm). It holds the Helm template engine and the Kubernetes
// client libraries it links, so that publish itself stays small and quick
// to start; publish runs it only to render a chart.
//
//	publish-helm --chart DIR --out DIR --release NAME --namespace NS < values.json
package main

import (
	"os"

	"github.com/hoist-ci/hoist/internal/command/publishhelm"
)

func main() {
	os.Exit(publishhelm.Main(os.Args[1:]))
}
