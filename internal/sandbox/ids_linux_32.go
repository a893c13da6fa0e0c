//go:build 386 || arm

package sandbox

import "golang.org/x/sys/unix"

// The syscalls that set a thread's ids with 32-bit ids (the plain ones
// take 16-bit ids on these architectures).
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
