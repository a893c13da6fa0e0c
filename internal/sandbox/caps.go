package sandbox

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// defaultCapabilities are Docker's default capabilities: what a RUN may
// keep under isolation namespaces, where the user namespace confines the
// rest (CAP_MKNOD makes no device there; CAP_SYS_CHROOT cannot leave a
// root entered with pivot_root).
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// chrootCapabilities are Docker's default less the two that leave a
// chroot without a mount namespace: CAP_SYS_CHROOT (chroot into a
// subdirectory, then climb out with "..") and CAP_MKNOD (a block device
// node of the host's disk).
var chrootCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// withoutMknod is Docker's default less CAP_MKNOD: isolation namespaces
// without a user namespace (in a container whose /proc Docker masked),
// where a device node would be a real one.
var withoutMknod = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

var capabilityNumbers = map[string]uint{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE, "CAP_FSETID": unix.CAP_FSETID,
	"CAP_FOWNER": unix.CAP_FOWNER, "CAP_MKNOD": unix.CAP_MKNOD, "CAP_NET_RAW": unix.CAP_NET_RAW,
	"CAP_SETGID": unix.CAP_SETGID, "CAP_SETUID": unix.CAP_SETUID, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_SETPCAP": unix.CAP_SETPCAP, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_KILL": unix.CAP_KILL, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
}

func capabilitySet(names []string) (uint64, error) {
	var set uint64
	for _, n := range names {
		c, ok := capabilityNumbers[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %s", n)
		}
		set |= 1 << c
	}
	return set, nil
}

// boundCapabilities drops every capability outside keep from the calling
// thread's bounding set (and clears its ambient set): nothing the command
// executes can gain them back.
func boundCapabilities(keep uint64) error {
	for c := uint(0); c < 64; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the kernel's last capability
		}
		if err != nil || in == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	return nil
}

// limitCapabilities sets the calling thread's effective and permitted
// sets to what it has of keep, and its inheritable set to none.
func limitCapabilities(keep uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	have := uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	set := have & keep
	for i := range data {
		v := uint32(set >> (32 * i))
		data[i] = unix.CapUserData{Effective: v, Permitted: v}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("limiting capabilities: %w", err)
	}
	return nil
}

// effective tells whether the calling thread has capability c in its
// effective set.
func effective(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true // unknown: let the attempt tell
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}
