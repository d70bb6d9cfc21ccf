package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berthdev/berth/internal/up/ociimage"
	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

// ctrLab adds to a lab what the real-containerd benchmarks need: a private containerd
// (ctrtest, which removes every container, mount and cgroup it made when it stops), a
// loopback registry (bin/registry) holding a small test image, and the manager.
type ctrLab struct {
	*lab
	ctr   *ctrtest.Containerd
	image string
}

// runContainerd measures TaskStartupLatency and AgentFootprint (whichever are
// selected) against one containerd. Both compare with plain containerd: `ctr run` of
// the same image for latency, containerd's own figures and `ctr run` containers for
// the footprint.
func runContainerd(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	if reason := ctrtest.SkipReason(); reason != "" {
		return nil, &errSkip{reason: reason + " (run `make bench` as root to measure TaskStartupLatency and AgentFootprint)"}
	}
	cl, err := startCtrLab(ctx, r, l)
	if err != nil {
		return nil, err
	}
	out := &outcome{}
	// The baseline first, on an idle containerd: `ctr run` of the image, paced as the
	// tasks will be; it also gives the memory a plain container costs.
	base, err := cl.ctrRunBaseline(ctx, r.size.n(100, 5)/5)
	if err != nil {
		return nil, err
	}
	r.logf("containerd: baseline: %d `ctr run` p50 %.0f ms, %.2f MiB per container", len(base.latencies), Percentile(Millis(base.latencies), 50), base.perContainerMiB)
	if r.wants(TaskStartupLatency) {
		if err := cl.startupLatency(ctx, r, base, out); err != nil {
			return out, err
		}
	}
	if r.wants(AgentFootprint) {
		if err := cl.footprint(ctx, r, base, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func startCtrLab(ctx context.Context, r *runner, l *lab) (*ctrLab, error) {
	ctr, err := ctrtest.Launch()
	if err != nil {
		return nil, fmt.Errorf("starting containerd: %w", err)
	}
	l.onClose(ctr.Stop)
	cl := &ctrLab{lab: l, ctr: ctr}
	addr, err := cl.startRegistry()
	if err != nil {
		return nil, err
	}
	if cl.image, err = pushTestImage(ctx, r, addr); err != nil {
		return nil, err
	}
	if err := l.startManager(ctx); err != nil {
		return nil, err
	}
	return cl, nil
}

// startRegistry runs bin/registry on a free loopback port with its storage under
// containerd's directory; containerd pulls from loopback registries over plain HTTP.
func (cl *ctrLab) startRegistry() (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	cfg := filepath.Join(cl.ctr.Dir, "registry.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  secret: %s\n",
		filepath.Join(cl.ctr.Dir, "registry"), addr, hex.EncodeToString(secret)), 0o600); err != nil {
		return "", err
	}
	c, err := startChild("registry", cl.run.workFile("registry.log"), regtest.BinaryPath(), "serve", cfg)
	if err != nil {
		return "", err
	}
	cl.onClose(func() error { return c.stop(10 * time.Second) })
	err = cl.poll(context.Background(), 30*time.Second, 50*time.Millisecond, "the registry", func() (bool, string, error) {
		if err := c.exited(); err != nil {
			return false, "", err
		}
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false, err.Error(), nil
		}
		_ = resp.Body.Close() // only the status matters
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
	return addr, err
}

// pushTestImage builds the test program of test/testenv/registry (it prints
// "ready" and sleeps until SIGTERM) into a one-layer image and pushes it.
func pushTestImage(ctx context.Context, r *runner, registry string) (string, error) {
	bin := r.workFile("testimage")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = regtest.TestProgramDir()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test program: %w\n%s", err, b)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	img, err := ociimage.BuildImage(map[string][]byte{regtest.TestBinaryPath: data}, []string{regtest.TestBinaryPath})
	if err != nil {
		return "", err
	}
	ref := registry + "/bench/sleeper:1"
	return ref, ociimage.Push(ctx, img, ref, nil)
}

// ctrBaseline is what plain containerd does with the image.
type ctrBaseline struct {
	// latencies of `ctr run -d`, from the command's start to its exit (the container
	// is started when it returns).
	latencies []time.Duration
	// perContainerMiB is the PSS of the shims and container processes plus
	// containerd's growth, per container.
	perContainerMiB float64
}

const ctrNamespace = "bench-ctr"

func (cl *ctrLab) runCtr(ctx context.Context, args ...string) error {
	full := append([]string{"-a", cl.ctr.Address, "-n", ctrNamespace}, args...)
	if b, err := exec.CommandContext(ctx, filepath.Join(testenv.BinDir(), "ctr"), full...).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %v: %w\n%s", args, err, b)
	}
	return nil
}

// ctrRunBaseline pulls the image in a namespace of its own, runs n containers with
// `ctr run -d` five a second (as the tasks are created), measures their memory, and
// removes them.
func (cl *ctrLab) ctrRunBaseline(ctx context.Context, n int) (*ctrBaseline, error) {
	n = max(n, 3)
	if err := cl.runCtr(ctx, "images", "pull", "--plain-http", "--snapshotter", cl.ctr.Snapshotter, cl.image); err != nil {
		return nil, err
	}
	ctrdPID, err := cl.containerdPID()
	if err != nil {
		return nil, err
	}
	before, err := pssKiB(ctrdPID)
	if err != nil {
		return nil, err
	}
	base := &ctrBaseline{}
	tick := time.NewTicker(time.Second / startRate)
	defer tick.Stop()
	var ids []string
	defer func() {
		for _, id := range ids {
			_ = cl.runCtr(context.Background(), "task", "delete", "-f", id)
			_ = cl.runCtr(context.Background(), "container", "delete", id)
		}
	}()
	for i := range n {
		<-tick.C
		id := "ctr-baseline-" + strconv.Itoa(i)
		start := time.Now()
		if err := cl.runCtr(ctx, "run", "-d", "--snapshotter", cl.ctr.Snapshotter, "--runc-root", cl.ctr.RuncRoot, cl.image, id); err != nil {
			return nil, err
		}
		base.latencies = append(base.latencies, time.Since(start))
		ids = append(ids, id)
	}
	time.Sleep(time.Second) // let the containers settle
	shims, procs, err := shimMemory(cl.ctr.Address, ctrNamespace)
	if err != nil {
		return nil, err
	}
	if shims != n {
		return nil, fmt.Errorf("found %d shims of %d `ctr run` containers", shims, n)
	}
	after, err := pssKiB(ctrdPID)
	if err != nil {
		return nil, err
	}
	base.perContainerMiB = float64(procs+after-before) / 1024 / float64(n)
	return base, nil
}

// containerdPID finds the lab's containerd by its configuration file.
func (cl *ctrLab) containerdPID() (int, error) {
	return findProcess("containerd", filepath.Join(cl.ctr.Dir, "config.toml"))
}

// startRate is how many tasks (and `ctr run` containers) a second the latency
// benchmark starts.
const startRate = 5

// shimMemory sums the PSS of the runc shims of one containerd namespace and of every
// process under them (the containers), and counts the shims.
func shimMemory(address, namespace string) (shims int, kib int64, err error) {
	for _, pid := range pids() {
		args := cmdline(pid)
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" || !hasArgs(args, "-namespace", namespace) || !hasArgs(args, "-address", address) {
			continue
		}
		shims++
		for _, p := range append([]int{pid}, descendants(pid)...) {
			v, perr := pssKiB(p)
			if perr != nil && !errors.Is(perr, os.ErrNotExist) {
				return 0, 0, perr
			}
			kib += v
		}
	}
	return shims, kib, nil
}

// hasArgs reports whether args holds flag followed by value.
func hasArgs(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

// agentConfig is a `berth agent` process's command line.
type agentConfig struct {
	name, cluster string
	// debug logs every task transition with nanosecond timestamps, for the latency
	// breakdown; the footprint is measured without it, as in production.
	debug bool
}

// startAgent runs the real agent as a child process of its own, with the production
// defaults except where this machine needs otherwise (containerd's socket, state
// and runc directories, HTTP and streaming ports: other suites of `make test` run
// agents at the same time, so a fixed port may be taken).
func (cl *ctrLab) startAgent(ctx context.Context, a agentConfig) (*child, string, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args := []string{cl.run.berth, "agent", "--kubeconfig", cl.env.Kubeconfig, "--cluster", a.cluster, "--name", a.name,
		"--containerd-address", cl.ctr.Address, "--containerd-namespace", "berth-" + a.name,
		"--state-dir", filepath.Join(cl.ctr.Dir, "agent-"+a.name), "--snapshotter", cl.ctr.Snapshotter,
		"--registry-config-dir", cl.ctr.HostsDir, "--runc-root", cl.ctr.RuncRoot, "--http-bind-address", httpAddr,
		"--streaming-address", "127.0.0.1:0"}
	if a.debug {
		args = append(args, "--zap-log-level=debug", "--zap-time-encoding=rfc3339nano")
	}
	logPath := cl.run.workFile(cl.name + "-agent-" + a.name + ".log")
	c, err := startChild("berth agent "+a.name, logPath, args...)
	if err != nil {
		return nil, "", err
	}
	cl.onClose(func() error { return c.stop(30 * time.Second) })
	if err := cl.waitInstances(ctx, a.cluster, 1, time.Minute, c); err != nil {
		return nil, "", err
	}
	return c, logPath, nil
}
