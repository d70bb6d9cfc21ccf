// Package ociimage builds small OCI images from in-memory files and pushes them to
// a registry, with go-containerregistry. Builds are reproducible: the same files give
// the same digest. `berth up` uses it for the demo image; tests use it for theirs.
package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Option sets part of the image configuration in BuildImage.
type Option func(*v1.Config)

// WithCmd sets the image's CMD.
func WithCmd(cmd ...string) Option { return func(c *v1.Config) { c.Cmd = cmd } }

// WithEnv adds NAME=value entries to the image's environment.
func WithEnv(env ...string) Option { return func(c *v1.Config) { c.Env = append(c.Env, env...) } }

// WithWorkingDir sets the image's working directory.
func WithWorkingDir(dir string) Option { return func(c *v1.Config) { c.WorkingDir = dir } }

// WithUser sets the image's default user.
func WithUser(user string) Option { return func(c *v1.Config) { c.User = user } }

// WithStopSignal sets the image's STOPSIGNAL.
func WithStopSignal(sig string) Option { return func(c *v1.Config) { c.StopSignal = sig } }

// WithLabels sets image labels; WithLabels("k", "v") makes BuildImage's output differ
// from an otherwise identical image, which gives a new digest.
func WithLabels(kv ...string) Option {
	return func(c *v1.Config) {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Labels[kv[i]] = kv[i+1]
		}
	}
}

// epoch is the time of every file and of the image: builds are reproducible.
var epoch = time.Unix(0, 0)

// BuildImage builds a single-layer OCI image for the machine's platform from files
// (absolute or relative path -> content). Files that start with an ELF header or "#!"
// get mode 0755, others 0644; parent directories are created, and /tmp always exists
// (mode 1777). entrypoint is the image's ENTRYPOINT.
func BuildImage(files map[string][]byte, entrypoint []string, opts ...Option) (v1.Image, error) {
	return BuildImageWithModes(files, nil, entrypoint, opts...)
}

// BuildImageWithModes is BuildImage with the modes of some files set (path as in
// files -> mode bits, setuid and setgid included); every file is owned by root.
func BuildImageWithModes(files map[string][]byte, modes map[string]int64, entrypoint []string, opts ...Option) (v1.Image, error) {
	data, err := layerTar(files, modes)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("building layer: %w", err)
	}
	return imageWithLayer(layer, entrypoint, opts)
}

// layerTar returns the tar of the layer: /tmp, then the files in name order (the same
// files always give the same digest), each after its parent directories, with the
// mode modes gives them, if any.
func layerTar(files map[string][]byte, modes map[string]int64) ([]byte, error) {
	var buf bytes.Buffer
	w := &layerWriter{tw: tar.NewWriter(&buf), dirs: map[string]bool{}}
	if err := w.addDir("tmp", 0o1777); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := w.addFile(n, files[n], modes[n]); err != nil {
			return nil, err
		}
	}
	if err := w.tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layerWriter writes a layer tar, creating each directory once.
type layerWriter struct {
	tw   *tar.Writer
	dirs map[string]bool
}

// addDir writes dir with mode, after its missing parents (mode 0755).
func (w *layerWriter) addDir(dir string, mode int64) error {
	if dir == "." || dir == "/" || dir == "" || w.dirs[dir] {
		return nil
	}
	if err := w.addDir(path.Dir(dir), 0o755); err != nil {
		return err
	}
	w.dirs[dir] = true
	return w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode, ModTime: epoch})
}

// addFile writes the regular file name (made relative) after its parent directories,
// with mode if it is not 0; otherwise ELF binaries and scripts get mode 0755, other
// files 0644.
func (w *layerWriter) addFile(name string, content []byte, mode int64) error {
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if err := w.addDir(path.Dir(clean), 0o755); err != nil {
		return err
	}
	switch {
	case mode != 0:
	case bytes.HasPrefix(content, []byte("\x7fELF")) || bytes.HasPrefix(content, []byte("#!")):
		mode = 0o755
	default:
		mode = 0o644
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: clean, Mode: mode, Size: int64(len(content)), ModTime: epoch}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := w.tw.Write(content)
	return err
}

// imageWithLayer returns an OCI image of layer for linux on the machine's
// architecture, with entrypoint, a default PATH and opts applied to its config.
func imageWithLayer(layer v1.Layer, entrypoint []string, opts []Option) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = entrypoint
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, o := range opts {
		o(&cf.Config)
	}
	return mutate.ConfigFile(img, cf)
}

// Push uploads img as ref. auth may be nil for an anonymous push. Registries are
// reached over plain HTTP when the reference allows it (name.Insecure), as loopback
// registries are.
func Push(ctx context.Context, img v1.Image, ref string, auth authn.Authenticator, opts ...remote.Option) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("parsing %q: %w", ref, err)
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	opts = append(opts, remote.WithAuth(auth), remote.WithContext(ctx))
	if err := remote.Write(r, img, opts...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
