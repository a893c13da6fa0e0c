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
	// ESCAPE=1: the escape list, with /outside as the directory a way
	// out would write to.
	args := []string{"helper", "info"}
	if os.Getenv("ESCAPE") != "" {
		args = []string{"helper", "escape", "/outside"}
	}
	used, err := sandbox.Run(context.Background(), sandbox.Command{
		Root: "/stage", Args: args, Env: []string{"PATH=/bin"}, Init: self,
		Stdout: os.Stdout, Stderr: os.Stdout,
	}, iso)
	fmt.Printf("isolation=%s\n", used)
	if os.Getenv("ESCAPE") != "" {
		var names []string
		entries, _ := os.ReadDir("/outside")
		for _, e := range entries {
			names = append(names, e.Name())
		}
		fmt.Printf("outside: %v\n", names)
	}
	if err != nil {
		fmt.Printf("error: %v\n", err)
	}
}
