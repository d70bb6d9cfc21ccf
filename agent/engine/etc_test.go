package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestEtcFiles(t *testing.T) {
	in := &taskInput{uid: testUID, stateDir: "/var/lib/berth", ip: "10.200.0.7",
		resolvConf: "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n"}
	def := &ecsv1alpha1.ContainerDefinition{Name: "web", Hostname: "web-1", Links: []string{"db:database", "cache"},
		ExtraHosts: []ecsv1alpha1.HostEntry{{Hostname: "api.internal", IPAddress: "10.1.2.3"}}}
	dir := "/var/lib/berth/volumes/" + testUID + "/.etc/web/"
	cases := []struct {
		name string
		mode ecsv1alpha1.NetworkMode
		def  *ecsv1alpha1.ContainerDefinition
		want []etcFile
	}{
		{"host mode keeps the instance's files", ecsv1alpha1.NetworkModeHost, def, nil},
		{"bridge: hostname at the task's address, links on loopback, extra hosts; the instance's resolver minus loopback",
			ecsv1alpha1.NetworkModeBridge, def, []etcFile{
				{dir + "hosts", "/etc/hosts", []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.200.0.7\tweb-1\n" +
					"127.0.0.1\tdb database\n127.0.0.1\tcache\n10.1.2.3\tapi.internal\n")},
				{dir + "resolv.conf", "/etc/resolv.conf", []byte("nameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n")},
			}},
		{"dnsServers and dnsSearchDomains replace the instance's", ecsv1alpha1.NetworkModeAWSVPC,
			&ecsv1alpha1.ContainerDefinition{Name: "web", DnsServers: []string{"1.1.1.1", "2606:4700::1111"}, DnsSearchDomains: []string{"a.example", "b.example"}},
			[]etcFile{
				{dir + "hosts", "/etc/hosts", []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")},
				{dir + "resolv.conf", "/etc/resolv.conf", []byte("nameserver 1.1.1.1\nnameserver 2606:4700::1111\nsearch a.example b.example\noptions edns0 trust-ad\n")},
			}},
		{"none: hosts only", ecsv1alpha1.NetworkModeNone, &ecsv1alpha1.ContainerDefinition{Name: "web"}, []etcFile{
			{dir + "hosts", "/etc/hosts", []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := *in
			in.spec = &ecsv1alpha1.TaskDefinitionSpec{NetworkMode: tc.mode}
			if diff := cmp.Diff(tc.want, etcFiles(&in, tc.def), cmp.AllowUnexported(etcFile{})); diff != "" {
				t.Errorf("etcFiles (-want +got):\n%s", diff)
			}
		})
	}
}
