package demo

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/test/testenv"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// start serves cfg on a loopback port; the returned channel gets the exit code.
func start(t *testing.T, ctx context.Context, cfg Config) (string, <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- Serve(ctx, ln, cfg, &testenv.SyncBuffer{}) }()
	return "http://" + ln.Addr().String(), done
}

func waitExit(t *testing.T, done <-chan int) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not exit")
		return -1
	}
}

func status(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestIndexReportsWhereItRuns(t *testing.T) {
	for k, v := range map[string]string{
		"BERTH_TASK": "default/web-abc-0-0", "BERTH_TASK_DEFINITION": "web:3",
		"BERTH_CONTAINER_INSTANCE": "worker-1", "BERTH_CLUSTER": "default",
		"BERTH_CONTAINER_NAME": "app", "GREETING": "hi",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	url, done := start(t, ctx, Config{})
	defer func() { cancel(); waitExit(t, done) }()

	req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var got Info
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := Info{Greeting: "hi", Cluster: "default", ContainerInstance: "worker-1", Task: "default/web-abc-0-0",
		TaskDefinition: "web:3", Container: "app", Healthy: true}
	got.Hostname, got.Uptime = "", ""
	if got != want {
		t.Errorf("info = %+v, want %+v", got, want)
	}

	resp2, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	_ = resp2.Body.Close()
	for _, s := range []string{"<h1>hi</h1>", "default/web-abc-0-0", "web:3", "worker-1"} {
		if !strings.Contains(string(body), s) {
			t.Errorf("page lacks %q:\n%s", s, body)
		}
	}
}

func TestHealthAndExitSwitches(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		// do acts on the server at url; want is the exit code expected afterwards.
		do   func(t *testing.T, url string)
		want int
	}{{
		name: "POST /fail turns health red",
		do: func(t *testing.T, url string) {
			if got := status(t, http.MethodGet, url+"/healthz"); got != http.StatusOK {
				t.Errorf("healthz before /fail = %d", got)
			}
			if code := healthcheck([]string{"--url", url + "/healthz"}, io.Discard); code != 0 {
				t.Errorf("healthcheck before /fail = %d, want 0", code)
			}
			status(t, http.MethodPost, url+"/fail")
			if got := status(t, http.MethodGet, url+"/healthz"); got != http.StatusServiceUnavailable {
				t.Errorf("healthz after /fail = %d", got)
			}
			if code := healthcheck([]string{"--url", url + "/healthz"}, io.Discard); code != 1 {
				t.Errorf("healthcheck after /fail = %d, want 1", code)
			}
			status(t, http.MethodPost, url+"/exit?code=0")
		},
	}, {
		name: "unhealthy after a delay",
		cfg:  Config{UnhealthyAfter: time.Nanosecond},
		do: func(t *testing.T, url string) {
			if got := status(t, http.MethodGet, url+"/healthz"); got != http.StatusServiceUnavailable {
				t.Errorf("healthz = %d, want 503", got)
			}
			status(t, http.MethodPost, url+"/exit")
		},
	}, {
		name: "POST /exit with a code",
		do: func(t *testing.T, url string) {
			if got := status(t, http.MethodPost, url+"/exit?code=300"); got != http.StatusBadRequest {
				t.Errorf("exit with code 300 = %d, want 400", got)
			}
			status(t, http.MethodPost, url+"/exit?code=7")
		},
		want: 7,
	}, {
		name: "exit after a delay",
		cfg:  Config{ExitAfter: 50 * time.Millisecond, ExitCode: 3},
		do:   func(*testing.T, string) {},
		want: 3,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, done := start(t, context.Background(), tc.cfg)
			tc.do(t, url)
			if got := waitExit(t, done); got != tc.want {
				t.Errorf("exit code = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMainFlags(t *testing.T) {
	cases := []struct {
		args []string
		want int
		msg  string
	}{
		{args: []string{"--fail-start"}, want: 1, msg: "--fail-start"},
		{args: []string{"--bogus"}, want: 2, msg: "flag provided but not defined: -bogus"},
		{args: []string{"extra"}, want: 2, msg: "unexpected arguments"},
		{args: []string{"--listen=256.0.0.1:1"}, want: 1, msg: "listening on 256.0.0.1:1"},
		{args: []string{"healthcheck", "--url", "http://127.0.0.1:1/healthz", "--timeout=1s"}, want: 1, msg: "unhealthy"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			if got := Main(tc.args, io.Discard, &stderr); got != tc.want {
				t.Errorf("exit code = %d, want %d (stderr %q)", got, tc.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.msg)
			}
		})
	}
}

func TestImageIsStaticAndRunsAsNobody(t *testing.T) {
	if err := checkStatic("/bin/sh"); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("checkStatic(/bin/sh) = %v, want a dynamically linked error", err)
	}
	img, err := Image([]byte("\x7fELF fake"), []byte("\x7fELF shell"))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/demo" {
		t.Errorf("entrypoint = %q", got)
	}
	if cf.Config.User != User {
		t.Errorf("user = %q, want %q", cf.Config.User, User)
	}
	// The shell is in the layer beside the demo, so exec has /bin/sh.
	files := map[string]string{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
	if files["demo"] != "\x7fELF fake" || files["bin/sh"] != "\x7fELF shell" {
		t.Errorf("layer files %v, want demo and bin/sh", slices.Sorted(maps.Keys(files)))
	}
}
