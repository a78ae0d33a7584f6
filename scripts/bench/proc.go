package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// repoRoot is the directory of the main module's go.mod, so that the bench
// builds the keel of the tree it was started from.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the keel repo")
	}
	return filepath.Dir(mod), nil
}

// build compiles ./cmd/keel into dir. Teammates edit the tree while the
// bench runs, so a failed compile is retried after a pause, up to tries
// times.
func build(ctx context.Context, root, dir string, tries int, pause time.Duration, log io.Writer) (string, error) {
	bin := filepath.Join(dir, "keel")
	var err error
	for i := 1; i <= tries; i++ {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/keel")
		cmd.Dir = root
		var out []byte
		out, err = cmd.CombinedOutput()
		if err == nil {
			return bin, nil
		}
		err = fmt.Errorf("go build ./cmd/keel: %w\n%s", err, tail(out, 2000))
		if i == tries {
			break
		}
		fmt.Fprintf(log, "bench: build failed (try %d/%d), retrying in %s:\n%s\n", i, tries, pause, tail(out, 600))
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pause):
		}
	}
	return "", err
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// freeAddr returns a loopback address with a port the kernel just handed
// out. Another process could take it before the child binds it; the bench
// then fails at startup rather than measuring the wrong thing.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is a child process the bench started and must stop.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // set before done is closed
}

// startProc starts bin with args, logging to dir/name.log, without the
// KEEL_* environment. The child gets SIGKILL if the bench dies without
// stopping it (Pdeathsig).
func startProc(name, dir, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The bench's flags and files configure keel, not the caller's KEEL_*.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, waits up to grace, then kills. It is safe to call
// more than once.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// logTail is the end of the process's output, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	return tail(b, 1500)
}

// waitReady polls url until it answers 200, the process exits, or 15s
// pass.
func waitReady(ctx context.Context, p *proc, url string) error {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited during startup (%v):\n%s", p.name, err, p.logTail())
		}
		if resp, err := hc.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after 15s:\n%s", p.name, url, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times. It is 100 on
// every Linux this bench targets (the stdlib has no sysconf).
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time process pid has used so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may contain spaces; fields resume after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// selfCPU is the user+system CPU time the bench itself has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// treeCPU is procCPU summed over pid and its descendants: a peer such as
// nginx works in child processes.
func treeCPU(pid int) time.Duration {
	d := procCPU(pid)
	for _, c := range children(pid) {
		d += treeCPU(c)
	}
	return d
}

// children lists pid's child processes.
func children(pid int) []int {
	files, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// treeStatus is procStatus summed over pid and its descendants.
func treeStatus(pid int, field string) int64 {
	v := procStatus(pid, field)
	for _, c := range children(pid) {
		v += treeStatus(c, field)
	}
	return v
}

// procStatus reads one kB-valued field (VmRSS, VmHWM) of
// /proc/PID/status, in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return kb * 1024
	}
	return 0
}

// rssSampler records the peak VmRSS of a process, sampled every period
// until stop is called.
type rssSampler struct {
	peak atomic.Int64
	quit chan struct{}
	done chan struct{}
}

func sampleRSS(pid int, period time.Duration) *rssSampler {
	s := &rssSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			if v := treeStatus(pid, "VmRSS"); v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the peak seen, in bytes.
func (s *rssSampler) stop() int64 {
	close(s.quit)
	<-s.done
	return s.peak.Load()
}

// perfRecord runs `perf record -g` against pid until stop is called, for
// the -perf option.
type perfRecord struct{ p *proc }

func startPerf(dir, out string, pid int) (*perfRecord, error) {
	p, err := startProc("perf", dir, "perf", "record", "-F", "1999", "-g", "-o", out, "-p", strconv.Itoa(pid))
	if err != nil {
		return nil, err
	}
	return &perfRecord{p}, nil
}

func (r *perfRecord) stop() {
	r.p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.p.done:
	case <-time.After(30 * time.Second):
		r.p.cmd.Process.Kill()
		<-r.p.done
	}
}

// machineCPU is the CPU time the whole machine has spent in user and
// system mode so far (all processes; not irq, softirq or steal).
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 4 || f[0] != "cpu" {
		return 0
	}
	var sum int64
	for _, v := range f[1:4] {
		n, _ := strconv.ParseInt(v, 10, 64)
		sum += n
	}
	return time.Duration(sum) * clockTick
}

// machineBusy is the share of all cores that processes used over d.
func machineBusy(ctx context.Context, cpus int, d time.Duration) float64 {
	m0, t0 := machineCPU(), time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	return (machineCPU() - m0).Seconds() / time.Since(t0).Seconds() / float64(cpus)
}
