// Command helper is run inside sandboxes by the sandbox tests.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	switch os.Args[1] {
	case "info":
		wd, _ := os.Getwd()
		groups, _ := os.Getgroups()
		entries, _ := os.ReadDir("/")
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		fmt.Printf("pid=%d uid=%d gid=%d groups=%v cwd=%s root=%v env=%s\n", os.Getpid(), os.Getuid(), os.Getgid(), groups, wd, names, os.Getenv("GREETING"))
	case "write":
		if err := os.WriteFile(os.Args[2], []byte(os.Args[3]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "fail":
		for i := range 30 {
			fmt.Printf("line %d\n", i)
		}
		fmt.Fprint(os.Stderr, "boom")
		code, _ := strconv.Atoi(os.Args[2])
		os.Exit(code)
	case "churn":
		// What a package manager does to a tree, roughly.
		check(os.WriteFile("/etc/new", []byte("new"), 0o644))
		check(os.Remove("/var/old"))
		check(os.RemoveAll("/var/cache"))
		check(os.MkdirAll("/var/cache/apt", 0o755))
		check(os.WriteFile("/var/cache/apt/pkg", []byte("pkg"), 0o600))
		check(os.Link("/etc/new", "/etc/new.hard"))
		check(os.Symlink("/etc/new", "/etc/new.sym"))
		check(os.Chmod("/etc/x", 0o600))
		check(os.Chown("/etc/x", 33, 33))
	case "mounts":
		stat, err := os.ReadFile("/proc/self/stat")
		pid := ""
		if f := strings.Fields(string(stat)); len(f) > 0 {
			pid = f[0]
		}
		fmt.Printf("proc=%q %v\n", pid, err)
		fmt.Printf("devnull=%v\n", os.WriteFile("/dev/null", []byte("x"), 0))
		var fs syscall.Statfs_t
		err = syscall.Statfs("/sys", &fs)
		fmt.Printf("sys-readonly=%v %v\n", fs.Flags&1 == 1, err)
		resolv, err := os.ReadFile("/etc/resolv.conf")
		fmt.Printf("resolv=%d %v\n", len(resolv), err)
	case "sleep":
		time.Sleep(time.Minute)
	case "escape":
		escape(os.Args[2], os.Args[3:])
	case "net":
		ifs, err := net.Interfaces()
		if err != nil {
			fmt.Println(err)
		}
		for _, i := range ifs {
			fmt.Println(i.Name)
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
