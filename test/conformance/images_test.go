package conformance

import (
	"os"
	"testing"

	regtest "github.com/berthdev/berth/test/testenv/registry"
)

// standInImages builds the images the ECS suite pulled, from Debian's static busybox
// (whose shell runs its applets without a PATH lookup, so /bin/sh is enough):
// busybox and ubuntu run commands in sh; nginx serves HTTP on port 80 (busybox
// httpd) until it is stopped. It returns them by the ECS repository name.
func standInImages(t *testing.T, reg *regtest.Registry) map[string]string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"bin/sh": bb,
		// user: nobody and friends are looked up in the image, as on Docker.
		"etc/passwd":     []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		"etc/group":      []byte("root:x:0:\nnogroup:x:65534:\n"),
		"www/index.html": []byte("ok\n"),
	}
	shell, err := regtest.BuildImage(files, nil, regtest.WithEnv("PATH=/bin"), regtest.WithCmd("/bin/sh"))
	if err != nil {
		t.Fatal(err)
	}
	busybox, _ := reg.Push(t, shell, "conformance/busybox", "latest")
	web, err := regtest.BuildImage(files, []string{"/bin/sh", "-c", "exec httpd -f -p 80 -h /www"}, regtest.WithEnv("PATH=/bin"))
	if err != nil {
		t.Fatal(err)
	}
	nginx, _ := reg.Push(t, web, "conformance/nginx", "latest")
	return map[string]string{"busybox": busybox, "ubuntu": busybox, "nginx": nginx}
}
