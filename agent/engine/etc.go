package engine

import (
	"bufio"
	"net/netip"
	"path/filepath"
	"strings"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// etcFile is a file the agent writes on the host and mounts into a container.
type etcFile struct {
	hostPath, containerPath string
	content                 []byte
}

// etcFiles are the /etc/hosts and /etc/resolv.conf of a container with a network
// namespace of its own (bridge and awsvpc; /etc/hosts only in none mode), as Docker
// writes them for ECS: name resolution that does not depend on what the image
// happens to hold. Host mode containers get the instance's own files (the runtime
// mounts them). They live with the task's volumes, so cleanup removes them.
func etcFiles(in *taskInput, def *ecsv1alpha1.ContainerDefinition) []etcFile {
	mode := in.spec.NetworkMode
	if mode == ecsv1alpha1.NetworkModeHost {
		return nil
	}
	dir := filepath.Join(volumesDir(in.stateDir, in.uid), ".etc", def.Name)
	out := []etcFile{{hostPath: filepath.Join(dir, "hosts"), containerPath: "/etc/hosts", content: hostsFile(in, def)}}
	if mode != ecsv1alpha1.NetworkModeNone {
		out = append(out, etcFile{hostPath: filepath.Join(dir, "resolv.conf"), containerPath: "/etc/resolv.conf",
			content: resolvConf(in.resolvConf, def.DnsServers, def.DnsSearchDomains)})
	}
	return out
}

// hostsFile resolves localhost, the container's hostname (to the task's address),
// its links (to 127.0.0.1: a bridge task's containers share one namespace) and its
// extraHosts.
func hostsFile(in *taskInput, def *ecsv1alpha1.ContainerDefinition) []byte {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if def.Hostname != "" {
		addr := in.ip
		if addr == "" {
			addr = "127.0.1.1"
		}
		b.WriteString(addr + "\t" + def.Hostname + "\n")
	}
	for _, l := range def.Links {
		b.WriteString("127.0.0.1\t" + strings.Join(taskrules.LinkNames(l), " ") + "\n")
	}
	for _, h := range def.ExtraHosts {
		b.WriteString(h.IPAddress + "\t" + h.Hostname + "\n")
	}
	return []byte(b.String())
}

// resolvConf is the instance's resolv.conf with the container's dnsServers and
// dnsSearchDomains in place of its own. Name servers on loopback (a local resolver
// such as systemd-resolved's 127.0.0.53) are dropped: they do not answer inside a
// task's namespace.
func resolvConf(host string, servers, search []string) []byte {
	hostServers, hostSearch, other := parseResolvConf(host)
	if len(servers) == 0 {
		servers = hostServers
	}
	if len(search) == 0 {
		search = hostSearch
	}
	var b strings.Builder
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, o := range other {
		b.WriteString(o + "\n")
	}
	return []byte(b.String())
}

// parseResolvConf splits a resolv.conf into its usable name servers (not on
// loopback), its search domains and its other lines (options, sortlist).
func parseResolvConf(text string) (servers, search, other []string) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0 || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case fields[0] == "nameserver" && len(fields) > 1:
			if ip, err := netip.ParseAddr(fields[1]); err == nil && !ip.IsLoopback() {
				servers = append(servers, fields[1])
			}
		case fields[0] == "search" || fields[0] == "domain":
			search = fields[1:]
		default:
			other = append(other, line)
		}
	}
	return servers, search, other
}
