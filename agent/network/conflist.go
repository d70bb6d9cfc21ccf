package network

import (
	"encoding/json"
	"path/filepath"
)

// cniVersion is the CNI spec version of the conflist; Debian's plugins (1.1) speak
// up to 1.0.0.
const cniVersion = "1.0.0"

// conflist is the agent's CNI network: the bridge plugin with host-local IPAM (its
// leases under StateDir/cni/networks), portmap for the port mappings, and loopback
// to bring lo up. loopback comes last: it passes the bridge's result on unchanged.
func conflist(cfg *Config) ([]byte, error) {
	type object = map[string]any
	bridge := object{
		"type":        "bridge",
		"bridge":      cfg.Bridge,
		"isGateway":   true,
		"ipMasq":      true,
		"hairpinMode": true,
		"ipam": object{
			"type":    "host-local",
			"ranges":  [][]object{{{"subnet": cfg.Subnet}}},
			"routes":  []object{{"dst": "0.0.0.0/0"}},
			"dataDir": filepath.Join(cfg.StateDir, "cni", "networks"),
		},
	}
	portmap := object{
		"type":         "portmap",
		"capabilities": object{"portMappings": true},
		// Connections from the instance itself (127.0.0.1:hostPort) and from other
		// tasks on the bridge are masqueraded, so their replies come back.
		"snat": true,
	}
	loopback := object{"type": "loopback"}
	b, err := json.MarshalIndent(object{
		"cniVersion": cniVersion,
		"name":       networkName,
		"plugins":    []object{bridge, portmap, loopback},
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
