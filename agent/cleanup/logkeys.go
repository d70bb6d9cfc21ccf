package cleanup

// Log keys of the cleanup loop, stable so that log queries keep working.
const (
	logImage = "image"
)
