package up

// `berth up` runs the web console (`berth console`) on loopback with the admin
// kubeconfig, as one more component: its access token goes to
// <state-dir>/console-token (0600), and the summary prints the URL with it.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// consoleTokenFile is the console's access token, under the state directory.
func (l layout) consoleTokenFile() string { return l.path("console-token") }

// startConsole starts `berth console` on ConsolePort (a free port when taken) and
// reads its token once it serves.
func (s *session) startConsole(ctx context.Context) error {
	port, err := freePort(s.o.ConsolePort)
	if err != nil {
		return err
	}
	tokenFile := s.l.consoleTokenFile()
	// The console writes a new token each start; never read the last run's.
	if err := os.Remove(tokenFile); err != nil && !os.IsNotExist(err) {
		return err
	}
	base := "http://" + hostPort(port)
	if err := s.launch(ctx, compConsole, s.berth, consoleArgs(s.l, port), nil,
		httpOK(&http.Client{Timeout: 2 * time.Second}, base+"/healthz")); err != nil {
		return err
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return fmt.Errorf("reading the console's token: %w", err)
	}
	s.consoleURL = base + "/?token=" + url.QueryEscape(strings.TrimSpace(string(token)))
	return nil
}

func consoleArgs(l layout, port int) []string {
	return []string{"console",
		"--kubeconfig=" + l.adminKubeconfig(),
		"--address=" + hostPort(port),
		"--token-file=" + l.consoleTokenFile(),
	}
}

// validConsolePort: 0 disables the console, else a port.
func validConsolePort(p int) error {
	if p < 0 || p > 65535 {
		return fmt.Errorf("--console-port: %s is not a port (1-65535, or 0 to run no console)", strconv.Itoa(p))
	}
	return nil
}
