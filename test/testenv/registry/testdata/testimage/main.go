// Command testimage is the program inside the test images that regtest builds: one
// static binary whose arguments are a script of actions, run in order, so a test can
// make a container print, write files, allocate memory, serve HTTP, ignore SIGTERM or
// exit with a chosen code without needing a shell or a base image.
//
// Actions (each one argument):
//
//	echo=TEXT          print TEXT and a newline to stdout
//	stderr=TEXT        print TEXT and a newline to stderr
//	env=NAME           print NAME=VALUE (or NAME unset)
//	write=PATH:TEXT    write TEXT to PATH (creating it), fail on error
//	trywrite=PATH:TEXT write TEXT to PATH and print "write ok" or "write failed: ERR"
//	cat=PATH           print the content of PATH
//	id                 print uid=N gid=N
//	euid               print euid=N (the effective UID: 0 after a setuid-root binary)
//	status=NAME,...    print the lines of /proc/self/status with those names
//	                   (NoNewPrivs, Seccomp, CapEff, ...)
//	pwd                print the working directory
//	rlimit=NAME        print the soft and hard limit of nofile, nproc, core or stack
//	alloc=MIB          allocate and touch MIB mebibytes, then print "allocated"
//	burnwhile=PATH     keep one CPU busy while PATH exists (checked every 50 ms), then go on
//	serve=PORT         serve "ok" over HTTP on PORT in the background
//	get=URL            print the body of GET URL (or "get failed: ERR")
//	ignore-term        ignore SIGTERM (from then on)
//	term-exit=CODE     exit with CODE, not 0, on SIGTERM (from then on)
//	ps                 print "PID CMDLINE" for every process it can see in /proc
//	tty=FD             print "tty FD: yes" if descriptor FD is a terminal, else "tty FD: no"
//	stdin              read stdin until end-of-file, then print "stdin closed"
//	waitfile=PATH      wait up to a minute for PATH to exist, then print its content
//	sleep=DURATION     sleep (Go duration, or "inf" for ever)
//	exit=CODE          exit with CODE
//
// Without actions it prints "ready" and sleeps for ever. SIGTERM makes it print
// "terminated" and exit 0 (or term-exit's code) unless ignore-term came first.
//
// Its SIGTERM handler is installed when main starts, so a SIGTERM in the first
// moments of the process, while the Go runtime starts, finds none. The process is
// PID 1 of its container, which the kernel shields from signals it has no handler
// for: Go's runtime then fails to kill itself with the signal and exits 2 (before
// the runtime installs its own handlers the signal is simply lost). A test that
// stops the container and expects a clean exit must wait for an action that runs
// after the handler is installed, such as echo=ready, to show in the output.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// inspect runs the actions that look at the process's surroundings: the processes
// it sees, its terminal, its standard input, a file another container writes.
func inspect(verb, arg string) error {
	switch verb {
	case "ps":
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue // exited meanwhile
			}
			fmt.Println(e.Name(), strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
		}
	case "tty":
		fd, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		var t syscall.Termios
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
		answer := "yes"
		if errno != 0 {
			answer = "no"
		}
		fmt.Printf("tty %d: %s\n", fd, answer)
	case "stdin":
		_, _ = io.Copy(io.Discard, os.Stdin)
		fmt.Println("stdin closed")
	case "waitfile":
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			b, err := os.ReadFile(arg)
			if err == nil {
				fmt.Print(string(b))
				return nil
			}
			if time.Now().After(deadline) {
				return err
			}
		}
	}
	return nil
}

// burnWhile spins until path is gone: load for utilization and auto scaling tests
// that a test switches off from outside the container.
func burnWhile(path string) {
	var n uint64
	for {
		deadline := time.Now().Add(50 * time.Millisecond)
		for time.Now().Before(deadline) {
			n++
		}
		if _, err := os.Stat(path); err != nil {
			fmt.Println("burned", n > 0)
			return
		}
	}
}

// termExit is the exit code on SIGTERM (term-exit).
var termExit atomic.Int32

func main() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		fmt.Println("terminated")
		os.Exit(int(termExit.Load()))
	}()
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"echo=ready", "sleep=inf"}
	}
	for _, a := range args {
		if err := run(a); err != nil {
			fmt.Fprintf(os.Stderr, "testimage: %s: %v\n", a, err)
			os.Exit(2)
		}
	}
}

// status prints the lines of /proc/self/status named in names.
func status(names []string) error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, _, _ := strings.Cut(line, ":")
		for _, n := range names {
			if name == n {
				fmt.Println(line)
			}
		}
	}
	return nil
}

func run(action string) error {
	verb, arg, _ := strings.Cut(action, "=")
	switch verb {
	case "echo":
		fmt.Println(arg)
	case "stderr":
		fmt.Fprintln(os.Stderr, arg)
	case "env":
		if v, ok := os.LookupEnv(arg); ok {
			fmt.Printf("%s=%s\n", arg, v)
		} else {
			fmt.Printf("%s unset\n", arg)
		}
	case "write":
		path, text, _ := strings.Cut(arg, ":")
		return os.WriteFile(path, []byte(text), 0o644)
	case "trywrite":
		path, text, _ := strings.Cut(arg, ":")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			fmt.Printf("write failed: %v\n", err)
		} else {
			fmt.Println("write ok")
		}
	case "cat":
		b, err := os.ReadFile(arg)
		if err != nil {
			return err
		}
		fmt.Print(string(b))
	case "id":
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	case "euid":
		fmt.Printf("euid=%d\n", os.Geteuid())
	case "status":
		return status(strings.Split(arg, ","))
	case "pwd":
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		fmt.Println(wd)
	case "rlimit":
		// Go raises its own soft nofile limit to the hard one at start, so only the
		// hard nofile limit is what the container was given.
		res, ok := map[string]int{"nofile": syscall.RLIMIT_NOFILE, "nproc": 6 /* RLIMIT_NPROC */, "core": syscall.RLIMIT_CORE, "stack": syscall.RLIMIT_STACK}[arg]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", arg)
		}
		var r syscall.Rlimit
		if err := syscall.Getrlimit(res, &r); err != nil {
			return err
		}
		fmt.Printf("%s soft=%d hard=%d\n", arg, r.Cur, r.Max)
	case "alloc":
		mib, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		var keep [][]byte
		for i := 0; i < mib; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Printf("allocated %d MiB\n", len(keep))
	case "serve":
		// Listen before the next action, so "serve=P echo=ready" means P answers
		// once "ready" is printed.
		ln, err := net.Listen("tcp", ":"+arg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testimage: serve: %v\n", err)
			os.Exit(3)
		}
		go func() {
			err := http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintln(w, "ok")
			}))
			fmt.Fprintf(os.Stderr, "testimage: serve: %v\n", err)
			os.Exit(3)
		}()
	case "get":
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(arg)
		if err != nil {
			fmt.Printf("get failed: %v\n", err)
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(string(b))
	case "ignore-term":
		signal.Reset(syscall.SIGTERM)
		signal.Ignore(syscall.SIGTERM)
	case "term-exit":
		code, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		termExit.Store(int32(code))
	case "ps", "tty", "stdin", "waitfile":
		return inspect(verb, arg)
	case "burnwhile":
		burnWhile(arg)
	case "sleep":
		if arg == "inf" {
			for {
				time.Sleep(time.Hour)
			}
		}
		d, err := time.ParseDuration(arg)
		if err != nil {
			return err
		}
		time.Sleep(d)
	case "exit":
		code, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		os.Exit(code)
	default:
		return fmt.Errorf("unknown action %q", verb)
	}
	return nil
}
