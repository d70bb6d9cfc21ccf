package ecsimport

import (
	"strings"
)

// KubeName turns an ECS name (family, Secrets Manager secret, SSM parameter path) into
// a Kubernetes object name: lowercase, characters other than letters, digits, '-' and
// '.' become '-', runs of '-' collapse, and the name starts and ends with a letter or
// digit. ECS allows uppercase letters, underscores and '/', Kubernetes does not.
func KubeName(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
			dash = false
		default:
			if !dash {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-.")
	}
	return out
}
