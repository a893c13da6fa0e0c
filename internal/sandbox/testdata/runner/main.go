// Command runner runs the helper in /stage through the sandbox; the
// sandbox tests run it inside an unprivileged container.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hoist-ci/hoist/internal/sandbox"
)

func main() {
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(125)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	iso, err := sandbox.ParseIsolation(os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	used, err := sandbox.Run(context.Background(), sandbox.Command{
		Root: "/stage", Args: []string{"helper", "info"}, Env: []string{"PATH=/bin"}, Init: self,
		Stdout: os.Stdout, Stderr: os.Stdout,
	}, iso)
	fmt.Printf("isolation=%s\n", used)
	if err != nil {
		fmt.Printf("error: %v\n", err)
	}
}
