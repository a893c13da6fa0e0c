// Command archprobe prints the architecture it was built for and the one
// the kernel (or its emulator) reports; the binfmt tests build it for a
// foreign architecture and run it in a sandbox.
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
	os.Stdout.WriteString("goarch=" + runtime.GOARCH + " machine=" + string(m) + "\n")
}
