package localrun

import (
	"strings"
	"testing"
)

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a`:           "/tmp/a",
		`/tmp/with\040sp`:  "/tmp/with sp",
		`/tmp/tab\011x`:    "/tmp/tab\tx",
		`/tmp/back\134sl`:  `/tmp/back\sl`,
		`/tmp/trailing\04`: `/tmp/trailing\04`,
	} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigs(t *testing.T) {
	c := ContainerdConfig("/s/root", "/s/state", "/s/c.sock")
	for _, want := range []string{`root = "/s/root"`, `address = "/s/c.sock"`, `address = "/s/c.sock.ttrpc"`, `"io.containerd.grpc.v1.cri"`} {
		if !strings.Contains(c, want) {
			t.Errorf("containerd config lacks %q", want)
		}
	}
	r, err := RegistryConfig("/s/data", "127.0.0.1:5000", "auth: {}\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rootdirectory: /s/data", "addr: 127.0.0.1:5000", "auth: {}"} {
		if !strings.Contains(r, want) {
			t.Errorf("registry config lacks %q:\n%s", want, r)
		}
	}
}
