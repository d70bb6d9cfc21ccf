package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestSecretsRedactThemselves: every way the agent could print a value holding a
// secret (fmt verbs, JSON, logr through zap and funcr) shows no secret.
func TestSecretsRedactThemselves(t *testing.T) {
	const secret = "hunter2-value"
	spec := ContainerSpec{ID: "c", Image: "app:1", Env: Env{"PASSWORD=" + secret, "MODE=prod"}}
	values := map[string]any{
		"env":           spec.Env,
		"auth":          &Auth{Username: "bob", Password: secret},
		"spec":          spec,
		"spec pointer":  &spec,
		"redacted spec": Redacted(spec),
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var out []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				out = append(out, fmt.Sprintf(verb, v))
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))

			var zbuf bytes.Buffer
			core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&zbuf), zapcore.DebugLevel)
			zapr.NewLogger(zap.New(core)).Info("msg", "value", v)
			out = append(out, zbuf.String())
			var fbuf strings.Builder
			funcr.New(func(prefix, args string) { fbuf.WriteString(args) }, funcr.Options{}).Info("msg", "value", v)
			out = append(out, fbuf.String())

			for i, o := range out {
				if strings.Contains(o, secret) {
					t.Errorf("form %d shows the secret: %s", i, o)
				}
			}
		})
	}
	if got := spec.Env.Names(); len(got) != 2 || got[0] != "PASSWORD" || got[1] != "MODE" {
		t.Errorf("Names() = %v", got)
	}
}
