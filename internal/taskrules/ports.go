package taskrules

import (
	"fmt"
	"strconv"
	"strings"
)

// PortRange reads a containerPortRange, "first-last" with 1 <= first < last <=
// 65535, the rule the schema checks at admission. The agent's network publishes the
// range by it.
func PortRange(s string) (first, last int32, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, errA := strconv.ParseInt(a, 10, 32)
	hi, errB := strconv.ParseInt(b, 10, 32)
	if !ok || errA != nil || errB != nil || lo < 1 || lo >= hi || hi > 65535 {
		return 0, 0, fmt.Errorf("containerPortRange %q is not first-last with 1 <= first < last <= 65535", s)
	}
	return int32(lo), int32(hi), nil
}

// FormatPortRange writes a range as containerPortRange and hostPortRange read.
func FormatPortRange(first, last int32) string {
	return strconv.Itoa(int(first)) + "-" + strconv.Itoa(int(last))
}
