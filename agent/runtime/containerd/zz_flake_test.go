package containerd_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Temporary: reproduces the SIGTERM race of the polite container.
func TestZZStopRightAfterStart(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ZZ_N"))
	if n == 0 {
		t.Skip("ZZ_N not set")
	}
	delay, _ := time.ParseDuration(os.Getenv("ZZ_DELAY"))
	e := newEnv(t)
	img := e.image()
	codes := map[string]int{}
	for i := 0; i < n; i++ {
		spec := e.spec(fmt.Sprintf("p%d", i), img)
		if v, _ := strconv.Atoi(os.Getenv("ZZ_SHARES")); v > 0 {
			spec.CPUShares = uint64(v)
		}
		if _, err := e.rt.Create(e.ctx, spec); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rt.Start(e.ctx, spec.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		if os.Getenv("ZZ_READY") != "" {
			e.waitLog(spec, "ready")
		}
		start := time.Now()
		st, err := e.rt.Stop(e.ctx, spec.ID, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start).Round(100 * time.Millisecond)
		out := strings.ReplaceAll(strings.TrimSpace(e.log(spec)), "\n", "|")
		key := fmt.Sprintf("code=%d took=%s out=%q", st.Code, took, out)
		codes[key]++
		e.delete(spec.ID)
	}
	for k, v := range codes {
		t.Logf("%4d × %s", v, k)
	}
}
