package runtime

import "fmt"

// ImageErrorKind classifies a failed pull.
type ImageErrorKind string

const (
	// ImageNotFound: the registry has no such repository, tag or digest.
	ImageNotFound ImageErrorKind = "NotFound"
	// ImageUnauthorized: the registry refused the credentials (or their absence).
	ImageUnauthorized ImageErrorKind = "Unauthorized"
	// ImageUnavailable: the registry could not be reached or answered with a server
	// error or rate limit; a later retry may succeed.
	ImageUnavailable ImageErrorKind = "Unavailable"
	// ImageUnsupported: the image exists but cannot run here (no manifest for this
	// platform, an unsupported media type).
	ImageUnsupported ImageErrorKind = "Unsupported"
	// ImageFailed: any other failure.
	ImageFailed ImageErrorKind = "Failed"
)

// ImageError is a failed pull. Reason keeps what the registry said ("401
// Unauthorized: authentication required", "404 Not Found: manifest unknown") so the
// engine can show it as the container's reason.
type ImageError struct {
	Ref    string
	Kind   ImageErrorKind
	Reason string
	Err    error
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("pulling image %q: %s", e.Ref, e.Reason)
}

func (e *ImageError) Unwrap() error { return e.Err }

// Retryable reports whether pulling again later may succeed.
func (e *ImageError) Retryable() bool { return e.Kind == ImageUnavailable || e.Kind == ImageFailed }

// ReferenceError is an image reference that cannot be parsed. Retrying cannot fix it.
type ReferenceError struct {
	Ref string
	Err error
}

func (e *ReferenceError) Error() string {
	return fmt.Sprintf("invalid image reference %q: %v", e.Ref, e.Err)
}

func (e *ReferenceError) Unwrap() error { return e.Err }
