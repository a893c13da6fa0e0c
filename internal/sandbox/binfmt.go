package sandbox

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Platform is the platform a stage's commands are built for (an image
// platform: os, architecture, variant).
type Platform = v1.Platform

// ErrNoEmulator wraps the refusal of a foreign platform's RUN: no usable
// binfmt_misc handler for its architecture.
var ErrNoEmulator = errors.New("no emulator for the platform")

// elfArch is how an architecture's executables begin: ELF class (1: 32,
// 2: 64 bits), byte order (1: little, 2: big endian) and e_machine.
type elfArch struct {
	class, data byte
	machine     uint16
}

// elfArches are the architectures RUN can emulate, by image architecture.
var elfArches = map[string]elfArch{
	"amd64":    {2, 1, 62},  // EM_X86_64
	"386":      {1, 1, 3},   // EM_386
	"arm64":    {2, 1, 183}, // EM_AARCH64
	"arm":      {1, 1, 40},  // EM_ARM
	"ppc64le":  {2, 1, 21},  // EM_PPC64
	"ppc64":    {2, 2, 21},
	"s390x":    {2, 2, 22},  // EM_S390
	"riscv64":  {2, 1, 243}, // EM_RISCV
	"mips64le": {2, 1, 8},   // EM_MIPS
	"loong64":  {2, 1, 258}, // EM_LOONGARCH
}

// archAliases maps the names uname and distributions use to image
// architectures.
var archAliases = map[string]string{
	"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386", "x86": "386",
	"armhf": "arm", "armel": "arm", "armv7": "arm", "armv7l": "arm", "armv6l": "arm", "riscv": "riscv64", "ppc64el": "ppc64le",
}

func normalizeArch(a string) string {
	a = strings.ToLower(strings.TrimSpace(a))
	if n, ok := archAliases[a]; ok {
		return n
	}
	return a
}

// compatArches are 32-bit architectures a 64-bit host's kernel may run
// natively (IA32 emulation, AArch32 at EL0); whether it does is tried
// with a tiny probe executable.
var compatArches = map[string]string{"amd64": "386", "arm64": "arm"}

// elfHeader is the start of an executable of a (type 2: ET_EXEC, 3:
// ET_DYN, a position-independent executable).
func (a elfArch) header(typ uint16) []byte {
	h := make([]byte, 20)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = a.class, a.data, 1
	var order binary.ByteOrder = binary.LittleEndian
	if a.data == 2 {
		order = binary.BigEndian
	}
	order.PutUint16(h[16:], typ)
	order.PutUint16(h[18:], a.machine)
	return h
}

// binfmtEntry is one handler registered in binfmt_misc.
type binfmtEntry struct {
	name        string
	enabled     bool
	interpreter string
	flags       string
	offset      int
	magic, mask []byte
}

// matches reports whether the handler takes executables starting with hdr.
func (e binfmtEntry) matches(hdr []byte) bool {
	if len(e.magic) == 0 || e.offset+len(e.magic) > len(hdr) {
		return false
	}
	for i, m := range e.magic {
		k := byte(0xff)
		if i < len(e.mask) {
			k = e.mask[i]
		}
		if (hdr[e.offset+i]^m)&k != 0 {
			return false
		}
	}
	return true
}

func parseBinfmtEntry(name string, data []byte) (binfmtEntry, error) {
	e := binfmtEntry{name: name}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		var err error
		switch k {
		case "enabled":
			e.enabled = true
		case "interpreter":
			e.interpreter = v
		case "flags:":
			e.flags = v
		case "offset":
			e.offset, err = strconv.Atoi(v)
		case "magic":
			e.magic, err = hex.DecodeString(v)
		case "mask":
			e.mask, err = hex.DecodeString(v)
		}
		if err != nil {
			return e, fmt.Errorf("binfmt_misc entry %s: %s: %w", name, k, err)
		}
	}
	return e, nil
}

// emulationHost is what CheckEmulation looks at; tests replace it.
type emulationHost struct {
	os, arch  string
	binfmtDir string
	// runsNatively reports whether the kernel runs arch's executables
	// itself (a 32-bit compat architecture).
	runsNatively func(arch string) error
}

func defaultHost() emulationHost {
	return emulationHost{os: runtime.GOOS, arch: runtime.GOARCH, binfmtDir: "/proc/sys/fs/binfmt_misc", runsNatively: probeNative}
}

// CheckEmulation tells whether commands built for p can run in root on
// this host, and how: "native" for the host's own architecture (and a
// 32-bit architecture the kernel runs itself: 386 on amd64, arm on arm64,
// tried with a tiny probe executable), else the binfmt_misc handler that
// emulates it (qemu-user, normally). A handler must be enabled and either
// carry the F flag (its interpreter was opened when it was registered, so
// it works inside a chroot) or have its interpreter inside root. The
// error wraps ErrNoEmulator and names the platform, the host and the fix.
func CheckEmulation(root string, p Platform) (string, error) {
	return checkEmulation(root, p, defaultHost())
}

func checkEmulation(root string, p Platform, h emulationHost) (string, error) {
	host := h.os + "/" + h.arch
	osName := strings.ToLower(p.OS)
	if osName == "" {
		osName = "linux"
	}
	if osName != h.os {
		return "", fmt.Errorf("%w: RUN for %s cannot run on this %s host: build %s images on a %s machine", ErrNoEmulator, p, host, p.OS, p.OS)
	}
	arch := normalizeArch(p.Architecture)
	if arch == "" || arch == h.arch {
		return "native", nil
	}
	want, known := elfArches[arch]
	if !known {
		return "", fmt.Errorf("%w: RUN for %s on this %s host: the architecture %q is not one hoist knows how to emulate (%s)", ErrNoEmulator, p, host, p.Architecture, knownArches())
	}
	fix := fmt.Sprintf("Install one: apt-get install qemu-user-static binfmt-support (Debian/Ubuntu hosts), or docker run --privileged --rm tonistiigi/binfmt --install %s; on GitHub use docker/setup-qemu-action. Native platforms need nothing.", arch)
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: RUN for %s needs an emulator on this %s host: %s", ErrNoEmulator, p, host, fmt.Sprintf(format, args...))
	}
	var nativeErr error
	if compatArches[h.arch] == arch {
		if nativeErr = h.runsNatively(arch); nativeErr == nil {
			return "native (the kernel runs " + arch + " executables)", nil
		}
	}
	status, err := os.ReadFile(filepath.Join(h.binfmtDir, "status"))
	if errors.Is(err, os.ErrNotExist) {
		return fail("binfmt_misc is not mounted at %s (mount -t binfmt_misc binfmt_misc %s), so no handler for %s can be registered. %s", h.binfmtDir, h.binfmtDir, arch, fix)
	}
	if err != nil {
		return fail("reading %s: %v. %s", filepath.Join(h.binfmtDir, "status"), err, fix)
	}
	entries, err := readBinfmt(h.binfmtDir)
	if err != nil {
		return fail("%v", err)
	}
	var reasons []string
	for _, e := range entries {
		if !e.matches(want.header(2)) || !e.matches(want.header(3)) {
			continue
		}
		switch {
		case !e.enabled:
			reasons = append(reasons, fmt.Sprintf("the handler %s is disabled (update-binfmts --enable %s, or echo 1 > %s)", e.name, e.name, filepath.Join(h.binfmtDir, e.name)))
			continue
		case !strings.Contains(e.flags, "F"):
			inRoot, err := securejoin.SecureJoin(root, e.interpreter)
			if err == nil {
				if fi, err := os.Stat(inRoot); err == nil && fi.Mode().IsRegular() {
					break
				}
			}
			reasons = append(reasons, fmt.Sprintf("the handler %s runs %s, which the stage's root lacks, and was registered without the F flag that makes it work in a chroot "+
				"(re-register it with F: docker run --privileged --rm tonistiigi/binfmt --install %s, or Debian's qemu-user-static)", e.name, e.interpreter, arch))
			continue
		}
		if strings.TrimSpace(string(status)) != "enabled" {
			return fail("binfmt_misc is disabled (echo 1 > %s)", filepath.Join(h.binfmtDir, "status"))
		}
		return fmt.Sprintf("emulated by binfmt_misc handler %s (%s, flags %s)", e.name, e.interpreter, e.flags), nil
	}
	if len(reasons) > 0 {
		return fail("%s. %s", strings.Join(reasons, "; "), fix)
	}
	msg := fmt.Sprintf("no binfmt_misc handler for %s is registered", arch)
	if nativeErr != nil {
		msg = fmt.Sprintf("the kernel does not run %s executables itself (%v) and no binfmt_misc handler for %s is registered", arch, nativeErr, arch)
	}
	return fail("%s. %s", msg, fix)
}

func knownArches() string {
	var names []string
	for a := range elfArches {
		names = append(names, a)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// readBinfmt reads the registered handlers, in name order.
func readBinfmt(dir string) ([]binfmtEntry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the binfmt_misc handlers in %s: %w", dir, err)
	}
	var out []binfmtEntry
	for _, de := range des {
		if n := de.Name(); n == "status" || n == "register" || de.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading the binfmt_misc handler %s: %w", de.Name(), err)
		}
		e, err := parseBinfmtEntry(de.Name(), data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// probeCode is, per 32-bit compat architecture, machine code that exits
// with status 0, and the ELF flags its executable needs.
var probeCode = map[string]struct {
	code  []byte
	flags uint32
}{
	// xor ebx, ebx; mov eax, 1 (exit); int 0x80
	"386": {code: []byte{0x31, 0xdb, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80}},
	// mov r0, #0; mov r7, #1 (exit); svc #0 — EABI version 5
	"arm": {code: []byte{0x00, 0x00, 0xa0, 0xe3, 0x01, 0x70, 0xa0, 0xe3, 0x00, 0x00, 0x00, 0xef}, flags: 0x05000000},
}

// probeELF builds a minimal static 32-bit little-endian executable of
// arch that runs code.
func probeELF(a elfArch, code []byte, flags uint32) []byte {
	const base, ehsize, phsize = 0x10000, 52, 32
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', a.class, a.data, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	size := uint32(ehsize + phsize + len(code))
	for _, v := range []any{
		uint16(2), a.machine, uint32(1), uint32(base + ehsize + phsize), uint32(ehsize), uint32(0), flags,
		uint16(ehsize), uint16(phsize), uint16(1), uint16(0), uint16(0), uint16(0),
		// PT_LOAD of the whole file, read and execute.
		uint32(1), uint32(0), uint32(base), uint32(base), size, size, uint32(5), uint32(0x1000),
	} {
		_ = binary.Write(&b, le, v)
	}
	b.Write(code)
	return b.Bytes()
}

// probeNative runs a tiny executable of a 32-bit compat architecture:
// nil when the kernel runs it itself.
func probeNative(arch string) error {
	pc, ok := probeCode[arch]
	if !ok {
		return fmt.Errorf("no probe for %s", arch)
	}
	f, err := os.CreateTemp("", "hoist-"+arch+"-probe-")
	if err != nil {
		return fmt.Errorf("writing a probe executable: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(probeELF(elfArches[arch], pc.code, pc.flags))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o700)
	}
	if err != nil {
		return fmt.Errorf("writing a probe executable: %w", err)
	}
	for try := 0; ; try++ {
		err = exec.Command(f.Name()).Run()
		// A descriptor of the file may linger in a child forked
		// meanwhile by another goroutine: try again.
		if errors.Is(err, syscall.ETXTBSY) && try < 5 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("running a %s probe: %w", arch, err)
	}
	return nil
}
