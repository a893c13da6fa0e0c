package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The seccomp filter of a RUN is Docker's default profile (the data of
// github.com/moby/profiles/seccomp, as dockerd uses it), resolved for the
// command's capabilities and the running kernel, compiled here into a
// classic BPF program without libseccomp (the binaries are static, no
// cgo). As with runc, a syscall newer than any the profile names returns
// ENOSYS (so a C library falls back to an older one) and any other
// syscall outside the profile returns EPERM.

// seccompData offsets (struct seccomp_data: nr, arch, ip, args[6]).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// sections: the architectures a filter handles, by the profile's name,
// with their syscall tables. x32 (SCMP_ARCH_X32) is left out: its
// syscalls carry the X32 bit, above every number of the x86_64 table, and
// so get ENOSYS.
var seccompArches = map[specs.Arch]*arch.Info{
	specs.ArchX86_64:  arch.X86_64,
	specs.ArchX86:     arch.I386,
	specs.ArchAARCH64: arch.AARCH64,
	specs.ArchARM:     arch.ARM,
}

// seccompProfile is Docker's default profile for a process whose bounding
// set is caps (names such as CAP_CHOWN), on this kernel.
func seccompProfile(caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: caps, Permitted: caps, Effective: caps,
	}}}
	p, err := seccomp.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("resolving Docker's default seccomp profile: %w", err)
	}
	return p, nil
}

// compileSeccomp turns a profile into a BPF program: a section per
// architecture the profile lists and this package has a table for.
func compileSeccomp(p *specs.LinuxSeccomp) ([]bpf.Instruction, error) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, fmt.Errorf("seccomp: %s is big-endian; the filter is written for little-endian architectures", runtime.GOARCH)
	}
	defAction, err := seccompAction(p.DefaultAction, p.DefaultErrnoRet, 1)
	if err != nil {
		return nil, err
	}
	var a asm
	type section struct {
		info  *arch.Info
		label int
	}
	var sections []section
	native := false
	for _, name := range p.Architectures {
		info, ok := seccompArches[name]
		if !ok {
			continue
		}
		if info.Name == nativeArch() {
			native = true
		}
		sections = append(sections, section{info, a.newLabel()})
	}
	if !native {
		return nil, fmt.Errorf("seccomp: no syscall table for %s in the profile (%v)", runtime.GOARCH, p.Architectures)
	}
	a.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	for _, s := range sections {
		skip := a.newLabel()
		a.jump(bpf.JumpEqual, uint32(s.info.ID), 0, skip)
		a.ja(s.label)
		a.mark(skip)
	}
	// Another ABI than the profile's: killed, as libseccomp's default
	// "bad architecture" action does.
	a.emit(bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS})
	for _, s := range sections {
		a.mark(s.label)
		if err := compileSection(&a, p, s.info, defAction); err != nil {
			return nil, err
		}
	}
	return a.assemble()
}

// compileSection is the filter for one architecture: the profile's rules
// in order (the first that matches decides), then ENOSYS above the
// highest syscall number the profile names, then the default action.
func compileSection(a *asm, p *specs.LinuxSeccomp, info *arch.Info, defAction uint32) error {
	a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
	highest := 0
	for _, rule := range p.Syscalls {
		action, err := seccompAction(rule.Action, rule.ErrnoRet, 1)
		if err != nil {
			return err
		}
		var nrs []uint32
		for _, name := range rule.Names {
			nr, ok := info.SyscallNames[name]
			if !ok {
				continue // not a syscall of this architecture
			}
			highest = max(highest, nr)
			nrs = append(nrs, uint32(nr))
		}
		if len(rule.Args) == 0 {
			// Up to 200 comparisons share one return: every jump stays
			// within the 255 instructions a conditional jump reaches.
			for len(nrs) > 0 {
				chunk := nrs[:min(len(nrs), 200)]
				nrs = nrs[len(chunk):]
				ret, next := a.newLabel(), a.newLabel()
				for _, nr := range chunk {
					a.jump(bpf.JumpEqual, nr, ret, 0)
				}
				a.ja(next)
				a.mark(ret)
				a.emit(bpf.RetConstant{Val: action})
				a.mark(next)
			}
			continue
		}
		for _, nr := range nrs {
			next, fail := a.newLabel(), a.newLabel()
			a.jump(bpf.JumpEqual, nr, 0, next)
			for _, c := range rule.Args {
				if err := compileArg(a, c, fail); err != nil {
					return fmt.Errorf("seccomp rule for %v: %w", rule.Names, err)
				}
			}
			a.emit(bpf.RetConstant{Val: action})
			a.mark(fail)
			a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
			a.mark(next)
		}
	}
	enosys := a.newLabel()
	a.jump(bpf.JumpGreaterThan, uint32(highest), enosys, 0)
	a.emit(bpf.RetConstant{Val: defAction})
	a.mark(enosys)
	a.emit(bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	return nil
}

// compileArg checks one 64-bit argument (low word, then high word, on a
// little-endian ABI), falling through when it holds, else jumping to fail.
func compileArg(a *asm, c specs.LinuxSeccompArg, fail int) error {
	if c.Index > 5 {
		return fmt.Errorf("argument index %d", c.Index)
	}
	lo := offArgs + 8*uint32(c.Index)
	hi := lo + 4
	vhi, vlo := uint32(c.Value>>32), uint32(c.Value)
	pass := a.newLabel()
	ld := func(off uint32) { a.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }
	switch c.Op {
	case specs.OpEqualTo:
		ld(hi)
		a.jump(bpf.JumpEqual, vhi, 0, fail)
		ld(lo)
		a.jump(bpf.JumpEqual, vlo, pass, fail)
	case specs.OpNotEqual:
		ld(hi)
		a.jump(bpf.JumpEqual, vhi, 0, pass)
		ld(lo)
		a.jump(bpf.JumpEqual, vlo, fail, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		ld(hi)
		a.jump(bpf.JumpGreaterThan, vhi, pass, 0)
		a.jump(bpf.JumpEqual, vhi, 0, fail)
		ld(lo)
		cond := bpf.JumpGreaterThan
		if c.Op == specs.OpGreaterEqual {
			cond = bpf.JumpGreaterOrEqual
		}
		a.jump(cond, vlo, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		ld(hi)
		a.jump(bpf.JumpGreaterOrEqual, vhi, 0, pass)
		a.jump(bpf.JumpEqual, vhi, 0, fail)
		ld(lo)
		cond := bpf.JumpGreaterOrEqual // lo >= v fails LT
		if c.Op == specs.OpLessEqual {
			cond = bpf.JumpGreaterThan // lo > v fails LE
		}
		a.jump(cond, vlo, fail, pass)
	case specs.OpMaskedEqual:
		// (arg & Value) == ValueTwo
		whi, wlo := uint32(c.ValueTwo>>32), uint32(c.ValueTwo)
		ld(hi)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vhi})
		a.jump(bpf.JumpEqual, whi, 0, fail)
		ld(lo)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vlo})
		a.jump(bpf.JumpEqual, wlo, pass, fail)
	default:
		return fmt.Errorf("comparison %q", c.Op)
	}
	a.mark(pass)
	return nil
}

func seccompAction(act specs.LinuxSeccompAction, errno *uint, def uint) (uint32, error) {
	e := def
	if errno != nil {
		e = *errno
	}
	switch act {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(e&unix.SECCOMP_RET_DATA), nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	}
	return 0, fmt.Errorf("seccomp action %q is not supported", act)
}

// nativeArch is the syscall table name of the running architecture.
func nativeArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return arch.X86_64.Name
	case "386":
		return arch.I386.Name
	case "arm64":
		return arch.AARCH64.Name
	case "arm":
		return arch.ARM.Name
	}
	return runtime.GOARCH
}

// seccompFilter is the program for a process whose bounding set is caps.
func seccompFilter(caps []string) ([]unix.SockFilter, error) {
	p, err := seccompProfile(caps)
	if err != nil {
		return nil, err
	}
	prog, err := compileSeccomp(p)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	if len(raw) > 4096 {
		return nil, fmt.Errorf("seccomp: the filter has %d instructions, more than the kernel's 4096", len(raw))
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// loadSeccomp installs a filter on the calling thread (which must be
// locked to its goroutine and execute the command next). no_new_privs
// must be set first.
func loadSeccomp(filter []unix.SockFilter) error {
	if len(filter) == 0 {
		return errors.New("seccomp: empty filter")
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("loading the seccomp filter: %w", errno)
	}
	return nil
}

// asm assembles BPF with symbolic jump targets. Label 0 is the next
// instruction. Conditional jumps must land within 255 instructions;
// unconditional ones (ja) anywhere.
type asm struct {
	ins    []asmIns
	labels map[int]int
	n      int
}

type asmIns struct {
	ins      bpf.Instruction
	cond     bpf.JumpTest
	val      uint32
	t, f, to int
	kind     int // 0: plain, 1: conditional jump, 2: ja
}

func (a *asm) newLabel() int {
	a.n++
	return a.n
}

func (a *asm) mark(l int) {
	if a.labels == nil {
		a.labels = map[int]int{}
	}
	a.labels[l] = len(a.ins)
}

func (a *asm) emit(i bpf.Instruction) { a.ins = append(a.ins, asmIns{ins: i}) }

func (a *asm) jump(cond bpf.JumpTest, val uint32, t, f int) {
	a.ins = append(a.ins, asmIns{kind: 1, cond: cond, val: val, t: t, f: f})
}

func (a *asm) ja(l int) { a.ins = append(a.ins, asmIns{kind: 2, to: l}) }

func (a *asm) assemble() ([]bpf.Instruction, error) {
	out := make([]bpf.Instruction, len(a.ins))
	skip := func(at, l int) (int, error) {
		if l == 0 {
			return 0, nil
		}
		pos, ok := a.labels[l]
		if !ok {
			return 0, fmt.Errorf("seccomp: label %d not placed", l)
		}
		if pos <= at {
			return 0, fmt.Errorf("seccomp: backward jump at %d", at)
		}
		return pos - at - 1, nil
	}
	for i, in := range a.ins {
		switch in.kind {
		case 0:
			out[i] = in.ins
		case 1:
			t, err := skip(i, in.t)
			if err != nil {
				return nil, err
			}
			f, err := skip(i, in.f)
			if err != nil {
				return nil, err
			}
			if t > 255 || f > 255 {
				return nil, fmt.Errorf("seccomp: conditional jump of %d/%d at %d", t, f, i)
			}
			out[i] = bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: uint8(t), SkipFalse: uint8(f)}
		case 2:
			s, err := skip(i, in.to)
			if err != nil {
				return nil, err
			}
			out[i] = bpf.Jump{Skip: uint32(s)}
		}
	}
	return out, nil
}
