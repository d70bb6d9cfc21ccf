package streaming

import (
	"fmt"
	"net/url"
	"strconv"

	routes "github.com/berthdev/berth/internal/streaming"
)

// execRequest is what an exec asks for.
type execRequest struct {
	container string
	command   []string
	stdin     bool
	stdout    bool
	stderr    bool
	tty       bool
}

// parseExecQuery reads an exec's parameters. A terminal merges stderr into stdout,
// so tty turns stderr off, as kubelet does.
func parseExecQuery(q url.Values) (execRequest, error) {
	r := execRequest{container: q.Get(routes.ParamContainer), command: q[routes.ParamCommand]}
	if len(r.command) == 0 || r.command[0] == "" {
		return r, fmt.Errorf("%s: at least one command argument is required, and the first must not be empty", routes.ParamCommand)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{routes.ParamStdin, &r.stdin}, {routes.ParamStdout, &r.stdout}, {routes.ParamStderr, &r.stderr}, {routes.ParamTTY, &r.tty}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		parsed, err := strconv.ParseBool(v)
		if err != nil {
			return r, fmt.Errorf("%s must be true or false (or 1 or 0), got %q", b.name, v)
		}
		*b.dst = parsed
	}
	if !r.stdin && !r.stdout && !r.stderr {
		return r, fmt.Errorf("at least one of %s, %s and %s must be true", routes.ParamStdin, routes.ParamStdout, routes.ParamStderr)
	}
	if r.tty {
		r.stderr = false
	}
	return r, nil
}
