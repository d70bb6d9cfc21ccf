package taskrules

import (
	"testing"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestPinnedImage(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct{ image, want, wantErr string }{
		{image: "127.0.0.1:5000/shop/web:v1", want: "127.0.0.1:5000/shop/web@" + dg},
		{image: "busybox", want: "docker.io/library/busybox@" + dg},
		{image: "registry.example/app:1@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", want: "registry.example/app@" + dg},
		{image: "Not A Reference", wantErr: "image"},
	}
	for _, tc := range tests {
		got, err := PinnedImage(tc.image, dg)
		if tc.wantErr != "" {
			if err == nil {
				t.Errorf("PinnedImage(%q) = %q, want an error", tc.image, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("PinnedImage(%q) = %q, %v; want %q", tc.image, got, err, tc.want)
		}
	}
	if _, err := PinnedImage("busybox", "sha256:short"); err == nil {
		t.Error("a malformed digest was accepted")
	}
	for vc, want := range map[ecsv1alpha1.VersionConsistency]bool{"": true, ecsv1alpha1.VersionConsistencyEnabled: true, ecsv1alpha1.VersionConsistencyDisabled: false} {
		if got := PinsDigest(&ecsv1alpha1.ContainerDefinition{VersionConsistency: vc}); got != want {
			t.Errorf("PinsDigest(%q) = %v, want %v", vc, got, want)
		}
	}
}
