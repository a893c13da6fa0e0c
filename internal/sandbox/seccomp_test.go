package sandbox

import (
	"encoding/binary"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompCall is a syscall as the filter sees it.
type seccompCall struct {
	arch    *arch.Info
	name    string
	nr      uint32 // when name is empty
	args    [6]uint64
	rawArch uint32 // when arch is nil
}

// run executes the program in x/net/bpf's VM. The VM loads words
// big-endian, so each 32-bit field of struct seccomp_data is stored
// big-endian at the offset the kernel's little-endian layout gives it.
func (c seccompCall) run(t *testing.T, vm *bpf.VM) uint32 {
	t.Helper()
	data := make([]byte, 64)
	nr := c.nr
	auditArch := c.rawArch
	if c.arch != nil {
		auditArch = uint32(c.arch.ID)
		if c.name != "" {
			n, ok := c.arch.SyscallNames[c.name]
			require.True(t, ok, c.name)
			nr = uint32(n)
		}
	}
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], auditArch)
	for i, v := range c.args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(v))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(v>>32))
	}
	out, err := vm.Run(data)
	require.NoError(t, err)
	return uint32(out)
}

// TestSeccompFilter runs the compiled Docker profile on syscalls a RUN
// makes and on the ones an escape needs.
func TestSeccompFilter(t *testing.T) {
	if nativeArch() != arch.X86_64.Name {
		t.Skip("the table below is x86_64's")
	}
	p, err := seccompProfile(defaultCapabilities)
	require.NoError(t, err)
	prog, err := compileSeccomp(p)
	require.NoError(t, err)
	require.Less(t, len(prog), 4096)
	vm, err := bpf.NewVM(prog)
	require.NoError(t, err)

	const (
		allow  = unix.SECCOMP_RET_ALLOW
		eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	x64, x86 := arch.X86_64, arch.I386
	for _, c := range []struct {
		call seccompCall
		want uint32
	}{
		{seccompCall{arch: x64, name: "read"}, allow},
		{seccompCall{arch: x64, name: "execve"}, allow},
		{seccompCall{arch: x64, name: "chroot"}, allow}, // CAP_SYS_CHROOT is in the set
		{seccompCall{arch: x64, name: "mount"}, eperm},
		{seccompCall{arch: x64, name: "umount2"}, eperm},
		{seccompCall{arch: x64, name: "unshare"}, eperm},
		{seccompCall{arch: x64, name: "setns"}, eperm},
		{seccompCall{arch: x64, name: "init_module"}, eperm},
		{seccompCall{arch: x64, name: "finit_module"}, eperm},
		{seccompCall{arch: x64, name: "kexec_load"}, eperm},
		{seccompCall{arch: x64, name: "bpf"}, eperm},
		{seccompCall{arch: x64, name: "open_by_handle_at"}, eperm},
		{seccompCall{arch: x64, name: "clone", args: [6]uint64{uint64(unix.SIGCHLD)}}, allow},
		{seccompCall{arch: x64, name: "clone", args: [6]uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}}, eperm},
		{seccompCall{arch: x64, name: "clone", args: [6]uint64{unix.CLONE_NEWNS}}, eperm},
		{seccompCall{arch: x64, name: "clone3"}, enosys},
		{seccompCall{arch: x64, name: "personality", args: [6]uint64{0}}, allow},
		{seccompCall{arch: x64, name: "personality", args: [6]uint64{0xffffffff}}, allow},
		{seccompCall{arch: x64, name: "personality", args: [6]uint64{0x0040000}}, eperm}, // ADDR_NO_RANDOMIZE
		{seccompCall{arch: x64, name: "personality", args: [6]uint64{1<<32 | 8}}, eperm},
		{seccompCall{arch: x64, name: "socket", args: [6]uint64{unix.AF_INET}}, allow},
		{seccompCall{arch: x64, name: "socket", args: [6]uint64{unix.AF_UNIX}}, allow},
		{seccompCall{arch: x64, name: "socket", args: [6]uint64{unix.AF_VSOCK}}, eperm},
		{seccompCall{arch: x64, nr: 1000}, enosys},       // newer than the profile
		{seccompCall{arch: x64, nr: 0x40000000}, enosys}, // x32 ABI
		{seccompCall{arch: x86, name: "read"}, allow},
		{seccompCall{arch: x86, name: "mount"}, eperm},
		{seccompCall{arch: x86, name: "socketcall"}, allow},
		{seccompCall{rawArch: 0xdead}, unix.SECCOMP_RET_KILL_PROCESS},
	} {
		name := c.call.name
		if c.call.arch != nil {
			name = c.call.arch.Name + "/" + name
		}
		require.Equal(t, c.want, c.call.run(t, vm), "%s %v", name, c.call.args)
	}
}

// TestSeccompFilterFollowsCapabilities: without CAP_SYS_CHROOT (isolation
// chroot drops it) the profile refuses chroot, as Docker's does.
func TestSeccompFilterFollowsCapabilities(t *testing.T) {
	if nativeArch() != arch.X86_64.Name {
		t.Skip("x86_64 numbers")
	}
	p, err := seccompProfile(chrootCapabilities)
	require.NoError(t, err)
	prog, err := compileSeccomp(p)
	require.NoError(t, err)
	vm, err := bpf.NewVM(prog)
	require.NoError(t, err)
	require.Equal(t, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM), seccompCall{arch: arch.X86_64, name: "chroot"}.run(t, vm))
	require.Equal(t, uint32(unix.SECCOMP_RET_ALLOW), seccompCall{arch: arch.X86_64, name: "read"}.run(t, vm))
}
