package sandbox

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// Handlers as Debian's qemu-user-static registers them.
const (
	aarch64Handler = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n" +
		"magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	s390xHandler = "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: PF\noffset 0\n" +
		"magic 7f454c4602020100000000000000000000020016\nmask fffffffffffffffcfffffffffffffffffffeffff\n"
	jarHandler = "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n"
)

const arm64Fix = "Install one: apt-get install qemu-user-static binfmt-support (Debian/Ubuntu hosts), or docker run --privileged --rm tonistiigi/binfmt --install arm64; " +
	"on GitHub use docker/setup-qemu-action. Native platforms need nothing."

func TestCheckEmulation(t *testing.T) {
	noCompat := func(arch string) error { return errors.New("exec format error") }
	compat := func(arch string) error { return nil }
	for _, c := range []struct {
		name     string
		platform Platform
		status   string            // "" : binfmt_misc not mounted
		entries  map[string]string // name → content
		inRoot   string            // a file made in the root
		native   func(string) error
		want     string
		wantErr  string
	}{
		{name: "native", platform: Platform{OS: "linux", Architecture: "amd64"}, want: "native"},
		{name: "native alias", platform: Platform{OS: "linux", Architecture: "x86_64"}, want: "native"},
		{name: "registered", platform: Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, status: "enabled",
			entries: map[string]string{"jar": jarHandler, "qemu-aarch64": aarch64Handler, "qemu-s390x": s390xHandler},
			want:    "emulated by binfmt_misc handler qemu-aarch64 (/usr/libexec/qemu-binfmt/aarch64-binfmt-P, flags PF)"},
		{name: "big endian", platform: Platform{OS: "linux", Architecture: "s390x"}, status: "enabled",
			entries: map[string]string{"qemu-aarch64": aarch64Handler, "qemu-s390x": s390xHandler},
			want:    "emulated by binfmt_misc handler qemu-s390x (/usr/libexec/qemu-binfmt/s390x-binfmt-P, flags PF)"},
		{name: "missing", platform: Platform{OS: "linux", Architecture: "arm64"}, status: "enabled",
			entries: map[string]string{"jar": jarHandler, "qemu-s390x": s390xHandler},
			wantErr: "RUN for linux/arm64 needs an emulator on this linux/amd64 host: no binfmt_misc handler for arm64 is registered. " + arm64Fix},
		{name: "disabled", platform: Platform{OS: "linux", Architecture: "arm64"}, status: "enabled",
			entries: map[string]string{"qemu-aarch64": "disabled" + aarch64Handler[len("enabled"):]},
			wantErr: "RUN for linux/arm64 needs an emulator on this linux/amd64 host: the handler qemu-aarch64 is disabled (update-binfmts --enable qemu-aarch64, or echo 1 > BINFMT/qemu-aarch64). " + arm64Fix},
		{name: "no F flag", platform: Platform{OS: "linux", Architecture: "arm64"}, status: "enabled",
			entries: map[string]string{"qemu-aarch64": "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: P\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"},
			wantErr: "the handler qemu-aarch64 runs /usr/bin/qemu-aarch64-static, which the stage's root lacks, and was registered without the F flag that makes it work in a chroot"},
		{name: "no F flag, interpreter in root", platform: Platform{OS: "linux", Architecture: "arm64"}, status: "enabled",
			entries: map[string]string{"qemu-aarch64": "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: \noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"},
			inRoot:  "usr/bin/qemu-aarch64-static",
			want:    "emulated by binfmt_misc handler qemu-aarch64 (/usr/bin/qemu-aarch64-static, flags )"},
		{name: "binfmt_misc disabled", platform: Platform{OS: "linux", Architecture: "arm64"}, status: "disabled",
			entries: map[string]string{"qemu-aarch64": aarch64Handler},
			wantErr: "RUN for linux/arm64 needs an emulator on this linux/amd64 host: binfmt_misc is disabled (echo 1 > BINFMT/status)"},
		{name: "not mounted", platform: Platform{OS: "linux", Architecture: "arm64"},
			wantErr: "RUN for linux/arm64 needs an emulator on this linux/amd64 host: binfmt_misc is not mounted at BINFMT (mount -t binfmt_misc binfmt_misc BINFMT), so no handler for arm64 can be registered. " + arm64Fix},
		{name: "compat arch the kernel runs", platform: Platform{OS: "linux", Architecture: "386"}, native: compat,
			want: "native (the kernel runs 386 executables)"},
		{name: "compat arch the kernel refuses", platform: Platform{OS: "linux", Architecture: "i386"}, status: "enabled", native: noCompat,
			wantErr: "RUN for linux/i386 needs an emulator on this linux/amd64 host: the kernel does not run 386 executables itself (exec format error) and no binfmt_misc handler for 386 is registered."},
		{name: "other os", platform: Platform{OS: "windows", Architecture: "amd64"},
			wantErr: "RUN for windows/amd64 cannot run on this linux/amd64 host: build windows images on a windows machine"},
		{name: "unknown arch", platform: Platform{OS: "linux", Architecture: "sparc64"},
			wantErr: `the architecture "sparc64" is not one hoist knows how to emulate`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, root := filepath.Join(t.TempDir(), "binfmt_misc"), t.TempDir()
			require.NoError(t, os.Mkdir(dir, 0o755))
			if c.status != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "status"), []byte(c.status+"\n"), 0o644))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "register"), nil, 0o200))
			}
			for n, content := range c.entries {
				require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(content), 0o644))
			}
			if c.inRoot != "" {
				require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(c.inRoot)), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(root, c.inRoot), []byte("qemu"), 0o755))
			}
			native := c.native
			if native == nil {
				native = func(arch string) error { t.Fatalf("%s is not a compat architecture of amd64", arch); return nil }
			}
			got, err := checkEmulation(root, c.platform, emulationHost{os: "linux", arch: "amd64", binfmtDir: dir, runsNatively: native})
			if c.wantErr != "" {
				require.ErrorIs(t, err, ErrNoEmulator)
				require.ErrorContains(t, err, strings.ReplaceAll(c.wantErr, "BINFMT", dir))
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

// TestProbeExecutables: the probe executables run, natively (386 on an
// amd64 kernel with IA32 emulation) or through the host's emulator. A
// kernel built without IA32 emulation refuses the 386 probe's format
// (ENOEXEC, detected here): there the probe is checked to be a
// well-formed 386 executable, and a linux/386 RUN gets the clear error.
func TestProbeExecutables(t *testing.T) {
	if testing.Short() {
		t.Skip("runs probe executables; skipped with -short")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the probes are checked on amd64 hosts")
	}
	switch err := probeNative("386"); {
	case err == nil:
		t.Log("this kernel runs 386 executables itself (IA32 emulation)")
	case errors.Is(err, syscall.ENOEXEC):
		t.Logf("this kernel has no IA32 emulation (%v): checking the probe's form and the error a 386 RUN gets", err)
		f, ferr := elf.NewFile(bytes.NewReader(probeELF(elfArches["386"], probeCode["386"].code, probeCode["386"].flags)))
		require.NoError(t, ferr, "the 386 probe is an ELF file")
		require.Equal(t, elf.EM_386, f.Machine)
		require.Equal(t, elf.ELFCLASS32, f.Class)
		require.NotEmpty(t, f.Progs, "it has a loadable segment")
		empty := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(empty, "status"), []byte("enabled\n"), 0o644))
		_, cerr := checkEmulation(t.TempDir(), Platform{OS: "linux", Architecture: "386"},
			emulationHost{os: "linux", arch: "amd64", binfmtDir: empty, runsNatively: probeNative})
		require.ErrorIs(t, cerr, ErrNoEmulator)
		require.ErrorContains(t, cerr, "the kernel does not run 386 executables itself")
		require.ErrorContains(t, cerr, "no binfmt_misc handler for 386 is registered")
		require.ErrorContains(t, cerr, "apt-get install qemu-user-static binfmt-support", "the error names the fix")
	default:
		t.Fatalf("the 386 probe failed otherwise than by the kernel refusing its format: %v", err)
	}
	how, err := CheckEmulation(t.TempDir(), Platform{OS: "linux", Architecture: "arm"})
	if err != nil {
		// Detected: no arm emulator here (test/rig/install.sh registers
		// qemu-arm where binfmt_misc exists).
		t.Logf("no arm emulator on this machine: checking the error instead: %v", err)
		require.ErrorIs(t, err, ErrNoEmulator)
		return
	}
	require.Contains(t, how, "emulated by binfmt_misc handler")
	require.NoError(t, probeNative("arm"), "the arm probe runs under the registered emulator")
}

// TestForeignPlatformRun builds a static arm64 program and runs it in a
// sandbox on this host, under each isolation: the emulator registered in
// binfmt_misc runs it, and the kernel it sees is an aarch64 one.
func TestForeignPlatformRun(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles and runs an arm64 program; skipped with -short")
	}
	foreign := Platform{OS: "linux", Architecture: "arm64"}
	if runtime.GOARCH == "arm64" {
		foreign = Platform{OS: "linux", Architecture: "amd64"}
	}
	root := t.TempDir()
	how, err := CheckEmulation(root, foreign)
	if err != nil {
		// Detected: no emulator here (no binfmt_misc, or no handler).
		t.Logf("no emulator for %s on this machine: checking the error instead: %v", foreign, err)
		require.ErrorIs(t, err, ErrNoEmulator)
		require.ErrorContains(t, err, "apt-get install qemu-user-static binfmt-support", "the error names the fix")
		return
	}
	t.Logf("%s: %s", foreign, how)

	build := exec.Command("go", "build", "-o", filepath.Join(root, "probe"), "./testdata/archprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+foreign.Architecture)
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	self, err := os.Executable()
	require.NoError(t, err)
	machine := map[string]string{"arm64": "aarch64", "amd64": "x86_64"}[foreign.Architecture]
	for _, iso := range []Isolation{Chroot, Namespaces} {
		t.Run(string(iso), func(t *testing.T) {
			out, used, err := runOut(t, Command{Root: root, Args: []string{"/probe"}, Init: self}, iso)
			require.NoError(t, err, out)
			require.Equal(t, iso, used)
			require.Equal(t, "goarch="+foreign.Architecture+" machine="+machine+"\n", out)
		})
	}
}
