// Command archprobe prints the architecture it was built for and the one
// the kernel (or its emulator) reports (and writes it to the file named
// by its argument); the binfmt tests and build-push's foreign-platform
// test build it for a foreign architecture and run it in a sandbox.
package main

import (
	"os"
	"runtime"
	"syscall"
)

func main() {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	var m []byte
	for _, c := range u.Machine {
		if c == 0 {
			break
		}
		m = append(m, byte(c))
	}
	line := "goarch=" + runtime.GOARCH + " machine=" + string(m) + "\n"
	// With an argument (build-push's foreign-platform test), the line
	// goes to that file too: a RUN's output that lands in the layer.
	if len(os.Args) > 1 {
		if err := os.WriteFile(os.Args[1], []byte(line), 0o644); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
	}
	os.Stdout.WriteString(line)
}
