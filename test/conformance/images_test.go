package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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
//     holds the semaphore set with key 5, as the suite's C helper did.
//
// It returns them by the ECS repository name.
func standInImages(t *testing.T, reg *regtest.Registry) map[string]string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"bin/sh":   bb,
		"bin/ipcs": []byte("#!/bin/sh\n# ipcs -s as the ECS suite reads it: the semaphore sets, the key (decimal) first.\ncat /proc/sysvipc/sem\n"),
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

	helper := filepath.Join(t.TempDir(), "ipcNamespaceTest")
	build := exec.Command("go", "build", "-o", helper, "./testdata/ipcproducer")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the IPC helper: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(helper)
	if err != nil {
		t.Fatal(err)
	}
	ipcImage, err := regtest.BuildImage(map[string][]byte{"ipcNamespaceTest": bin}, []string{"/ipcNamespaceTest"})
	if err != nil {
		t.Fatal(err)
	}
	ipcTest, _ := reg.Push(t, ipcImage, "conformance/ipc-namespace-test", "latest")
	return map[string]string{
		"busybox": busybox, "ubuntu": busybox, "nginx": nginx,
		"amazon-ecs-stress": stress, "amazon-ecs-pid-namespace-test": pidTest, "amazon-ecs-ipc-namespace-test": ipcTest,
	}
}
