package agent

import (
	"testing"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestAdvertiseHost(t *testing.T) {
	addrs := []ecsv1alpha1.InstanceAddress{
		{Type: ecsv1alpha1.AddressHostname, Address: "node-1"},
		{Type: ecsv1alpha1.AddressInternalIP, Address: "10.0.0.5"},
	}
	for _, tc := range []struct {
		listen, advertise string
		addrs             []ecsv1alpha1.InstanceAddress
		want              string
	}{
		{listen: "127.0.0.1:51680", addrs: addrs, want: "127.0.0.1"},
		{listen: "10.0.0.9:51680", addrs: addrs, want: "10.0.0.9"},
		{listen: "0.0.0.0:51680", addrs: addrs, want: "10.0.0.5"},
		{listen: ":51680", addrs: addrs, want: "10.0.0.5"},
		{listen: "[::]:51680", addrs: addrs, want: "10.0.0.5"},
		{listen: "0.0.0.0:51680", want: "127.0.0.1"},
		{listen: "0.0.0.0:51680", advertise: "node-1.example", addrs: addrs, want: "node-1.example"},
	} {
		if got := advertiseHost(tc.listen, tc.advertise, tc.addrs); got != tc.want {
			t.Errorf("advertiseHost(%q, %q) = %q, want %q", tc.listen, tc.advertise, got, tc.want)
		}
	}
}
