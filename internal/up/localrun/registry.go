package localrun

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// RegistryConfig is the configuration of a registry serving on addr (host:port)
// with its storage in dataDir; extra is appended (an auth section, say). The HTTP
// secret only signs upload state, so a new one each start is fine.
func RegistryConfig(dataDir, addr, extra string) (string, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
%s`, dataDir, addr, hex.EncodeToString(secret), extra), nil
}
