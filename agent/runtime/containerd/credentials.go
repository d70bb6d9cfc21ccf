package containerd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"github.com/berthdev/berth/agent/runtime"
)

// imageLabelPrivate marks image records pulled with credentials. A private image
// may be reused from the cache only by a task that presents the same credentials:
// anything else pulls again, so the registry, not the cache, decides whether that
// task may have the image (ECS leaves this to the Docker daemon's cache; Berth does
// not let one task's credentials open an image to another).
const imageLabelPrivate = runtime.LabelPrefix + "pulled-with-credentials"

// credentialMemo remembers, per image name, a keyed hash of the credentials of its
// last pull. The key is random per process and never stored, so nothing derived
// from a password outlives the agent or reaches containerd's labels; after a
// restart a private image is pulled again before its first reuse.
type credentialMemo struct {
	once  sync.Once
	key   []byte
	mu    sync.Mutex
	byRef map[string][]byte
}

func (m *credentialMemo) init() {
	m.once.Do(func() {
		m.key = make([]byte, 32)
		if _, err := rand.Read(m.key); err != nil {
			panic("reading random bytes: " + err.Error()) // the kernel's CSPRNG does not fail
		}
		m.byRef = map[string][]byte{}
	})
}

func (m *credentialMemo) fingerprint(auth *runtime.Auth) []byte {
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte(auth.Username))
	mac.Write([]byte{0})
	mac.Write([]byte(auth.Password))
	return mac.Sum(nil)
}

// remember records the credentials of a successful pull of name (nil: anonymous).
func (m *credentialMemo) remember(name string, auth *runtime.Auth) {
	m.init()
	m.mu.Lock()
	defer m.mu.Unlock()
	if auth == nil {
		delete(m.byRef, name)
		return
	}
	m.byRef[name] = m.fingerprint(auth)
}

// mayReuse reports whether a cached image may serve a task with auth: public
// images always, private ones only for the credentials of their last pull by this
// process.
func (m *credentialMemo) mayReuse(name string, labels map[string]string, auth *runtime.Auth) bool {
	if labels[imageLabelPrivate] == "" {
		return true
	}
	if auth == nil {
		return false
	}
	m.init()
	m.mu.Lock()
	defer m.mu.Unlock()
	want, ok := m.byRef[name]
	return ok && hmac.Equal(want, m.fingerprint(auth))
}
