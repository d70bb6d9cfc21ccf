package httpapi

// Log keys of the HTTP endpoint, stable so that log queries keep working.
const (
	logAddress = "address"
	logReason  = "reason"
	logPath    = "path"
	logCode    = "code"
	logUser    = "user"
)
