package conformance

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	regtest "github.com/berthdev/berth/test/testenv/registry"
)

// standInImages builds the images the ECS suite pulled, from Debian's static busybox
// (whose shell runs its applets without a PATH lookup, so /bin/sh is enough):
//   - busybox and ubuntu run commands in sh; their ipcs prints the IPC namespace's
//     semaphore sets (/proc/sysvipc/sem, the key in decimal first), which is what the
//     suite's `ipcs -s | awk '$1+0 == 5'` reads; Debian's busybox has no ipcs;
//   - nginx serves HTTP on port 80 (busybox httpd) until it is stopped;
//   - amazon-ecs-stress allocates memory without bound (tail of /dev/zero, which
//     has no line end), whatever its arguments, until the OOM killer ends it;
//   - amazon-ecs-pid-namespace-test sleeps with pidNamespaceTest on its command line
//     (what the suite's reader looks for in ps ax) and exits on SIGTERM;
//   - amazon-ecs-ipc-namespace-test is a static helper (testdata/ipcproducer) that
//     holds the semaphore set with key 5, as the suite's C helper did;
//   - testnnp is a static setuid helper (testdata/testnnp), as the suite's was;
//   - busybox's capsh prints the effective capabilities' names (see capsh).
//
// It returns them by the ECS repository name.
func standInImages(t *testing.T, reg *regtest.Registry) map[string]string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"bin/sh":    bb,
		"bin/ipcs":  []byte("#!/bin/sh\n# ipcs -s as the ECS suite reads it: the semaphore sets, the key (decimal) first.\ncat /proc/sysvipc/sem\n"),
		"bin/capsh": []byte(capsh),
		// user: nobody and friends are looked up in the image, as on Docker.
		"etc/passwd":     []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		"etc/group":      []byte("root:x:0:\nnogroup:x:65534:\n"),
		"www/index.html": []byte("ok\n"),
	}
	push := func(repo string, entrypoint []string, opts ...regtest.ImageOption) string {
		img, err := regtest.BuildImage(files, entrypoint, append([]regtest.ImageOption{regtest.WithEnv("PATH=/bin")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := reg.Push(t, img, "conformance/"+repo, "latest")
		return ref
	}
	busybox := push("busybox", nil, regtest.WithCmd("/bin/sh"))
	nginx := push("nginx", []string{"/bin/sh", "-c", "exec httpd -f -p 80 -h /www"})
	stress := push("stress", []string{"/bin/sh", "-c", "exec tail /dev/zero", "stress"})
	pidTest := push("pid-namespace-test", []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done", "pidNamespaceTest"})

	ipcImage, err := regtest.BuildImage(map[string][]byte{"ipcNamespaceTest": buildHelper(t, "testdata/ipcproducer")}, []string{"/ipcNamespaceTest"})
	if err != nil {
		t.Fatal(err)
	}
	ipcTest, _ := reg.Push(t, ipcImage, "conformance/ipc-namespace-test", "latest")
	images := map[string]string{
		"busybox": busybox, "ubuntu": busybox, "nginx": nginx,
		"amazon-ecs-stress": stress, "amazon-ecs-pid-namespace-test": pidTest, "amazon-ecs-ipc-namespace-test": ipcTest,
		"testnnp": testnnpImage(t, reg),
	}
	for name, ref := range parallelPullImages(t, reg, files) {
		images[name] = ref
	}
	return images
}

// parallelPullImages are the ECS suite's parallel-pull images (scripts/
// setup-test-registry): eight repositories tagged parallel-pull-fts, each a
// long-running image with a layer of 25 MB of its own random bytes, so that every
// pull moves data of its own. They are named "<repository>:parallel-pull-fts".
func parallelPullImages(t *testing.T, reg *regtest.Registry, files map[string][]byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i, repo := range []string{"busybox", "ubuntu", "consul", "debian", "httpd", "redis", "nginx", "registry"} {
		layerFiles := maps.Clone(files)
		payload := make([]byte, 25<<20)
		_, _ = rand.NewChaCha8([32]byte{byte(i)}).Read(payload)
		layerFiles["payload"] = payload
		img, err := regtest.BuildImage(layerFiles, []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"}, regtest.WithEnv("PATH=/bin"))
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := reg.Push(t, img, "conformance/parallel-pull-"+repo, "parallel-pull-fts")
		out[repo+":parallel-pull-fts"] = ref
	}
	return out
}

// buildHelper builds one of testdata's static helpers and returns the binary.
func buildHelper(t *testing.T, dir string) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(dir))
	build := exec.Command("go", "build", "-o", bin, "./"+dir)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testnnpImage is the ECS suite's amazon/testnnp: its testnnp helper installed
// setuid root, run as user 1000. The image builder writes no setuid files, so its
// one layer is written here.
func testnnpImage(t *testing.T, reg *regtest.Registry) string {
	t.Helper()
	bin := buildHelper(t, "testdata/testnnp")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "testnnp", Mode: 0o4755, Size: int64(len(bin))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base, err := regtest.BuildImage(nil, []string{"/testnnp"}, regtest.WithUser("1000"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := reg.Push(t, img, "conformance/testnnp", "latest")
	return ref
}

// capsh stands in for `capsh --print` as the ECS suite's add-drop-capabilities test
// reads it: the names of the process's effective capabilities (CapEff of
// /proc/self/status, in the kernel's order), on a "Current:" line.
const capsh = `#!/bin/sh
awk -v names="chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore" '
/^CapEff:/ {
	n = split(names, cap, " ")
	h = tolower($2)
	v = 0
	for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
	out = ""
	for (i = 0; i < n; i++) {
		if (v % 2 == 1) out = out (out == "" ? "" : ",") "cap_" cap[i + 1]
		v = int(v / 2)
	}
	print "Current: " out "=ep"
}' /proc/self/status
`
