package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// writeJUnit writes a Surefire-like JUnit report: cases in suites of 100,
// one in 100 failed with a stack trace, one in 50 skipped, every case with
// a few properties' worth of attributes and some captured output, so that
// 100,000 cases make about 30 MB.
func writeJUnit(path string, cases int) (failures int, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, `<?xml version="1.0" encoding="UTF-8"?>`)
	fmt.Fprintf(w, "<testsuites name=\"bench\" tests=\"%d\">\n", cases)
	stack := strings.Repeat("\tat com.example.service.impl.OrderServiceImpl.process(OrderServiceImpl.java:123)\n", 12)
	for i := 0; i < cases; i++ {
		suite := i / 100
		if i%100 == 0 {
			if i > 0 {
				fmt.Fprintln(w, "  </testsuite>")
			}
			fmt.Fprintf(w, "  <testsuite name=\"com.example.module%d.Service%dTest\" tests=\"100\" time=\"1.234\" timestamp=\"2026-11-20T10:00:00\" hostname=\"runner\">\n", suite%37, suite)
			fmt.Fprintln(w, `    <properties><property name="java.version" value="21.0.5"/><property name="user.dir" value="/builds/acme/orders"/></properties>`)
		}
		fmt.Fprintf(w, "    <testcase name=\"shouldHandleCase%d_withParameters[%d]\" classname=\"com.example.module%d.Service%dTest\" time=\"0.%03d\" file=\"src/test/java/com/example/module%d/Service%dTest.java\" line=\"%d\">", i, i%7, suite%37, suite, i%1000, suite%37, suite, 10+i%500)
		switch {
		case i%100 == 99:
			failures++
			fmt.Fprintf(w, "\n      <failure message=\"expected: &lt;%d&gt; but was: &lt;%d&gt;\" type=\"org.opentest4j.AssertionFailedError\">org.opentest4j.AssertionFailedError: expected: &lt;%d&gt; but was: &lt;%d&gt;\n%s</failure>\n", i, i+1, i, i+1, stack)
			fmt.Fprintf(w, "      <system-out><![CDATA[%s]]></system-out>\n    </testcase>\n", strings.Repeat("2026-11-20 10:00:00 INFO  request handled in 3 ms\n", 10))
		case i%50 == 17:
			fmt.Fprint(w, "\n      <skipped message=\"disabled on CI\"/>\n    </testcase>\n")
		default:
			fmt.Fprintf(w, "\n      <system-out><![CDATA[%s]]></system-out>\n    </testcase>\n", "2026-11-20 10:00:00 DEBUG step ok")
		}
	}
	fmt.Fprintln(w, "  </testsuite>\n</testsuites>")
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return failures, f.Close()
}

// writeCoverProfile writes a Go coverprofile of about size bytes: files of
// 400 blocks, 3 in 4 blocks covered. It returns the statement counts.
func writeCoverProfile(path string, size int64) (stmts, covered int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, _ := fmt.Fprintln(w, "mode: atomic")
	written := int64(n)
	for file := 0; written < size; file++ {
		name := fmt.Sprintf("github.com/acme/monorepo/services/svc%d/internal/handlers/handler%d.go", file%50, file)
		for b := 0; b < 400 && written < size; b++ {
			line := 10 + b*3
			s := int64(1 + b%4)
			count := 0
			if b%4 != 0 {
				count = b * 7
				covered += s
			}
			stmts += s
			n, _ := fmt.Fprintf(w, "%s:%d.%d,%d.%d %d %d\n", name, line, 2+b%30, line+2, 3+b%20, s, count)
			written += int64(n)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, 0, err
	}
	return stmts, covered, f.Close()
}
