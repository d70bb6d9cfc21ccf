package wire

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ECS's error types (the __type of an error response). Every one is an HTTP 400
// except ServerException: the SDKs retry 5xx answers, and a client error retried is a
// client error repeated.
const (
	ClientException                            = "ClientException"
	ServerException                            = "ServerException"
	InvalidParameterException                  = "InvalidParameterException"
	AccessDeniedException                      = "AccessDeniedException"
	ClusterNotFoundException                   = "ClusterNotFoundException"
	ClusterContainsServicesException           = "ClusterContainsServicesException"
	ClusterContainsTasksException              = "ClusterContainsTasksException"
	ClusterContainsContainerInstancesException = "ClusterContainsContainerInstancesException"
	ServiceNotFoundException                   = "ServiceNotFoundException"
	ServiceNotActiveException                  = "ServiceNotActiveException"
	ResourceNotFoundException                  = "ResourceNotFoundException"
	ResourceInUseException                     = "ResourceInUseException"
	TargetNotFoundException                    = "TargetNotFoundException"
	AttributeLimitExceededException            = "AttributeLimitExceededException"
	UnsupportedFeatureException                = "UnsupportedFeatureException"
	SerializationException                     = "SerializationException"
	UnknownOperationException                  = "UnknownOperationException"
	// Authentication, as every AWS JSON service answers it.
	MissingAuthenticationTokenException = "MissingAuthenticationTokenException"
	UnrecognizedClientException         = "UnrecognizedClientException"
	InvalidSignatureException           = "InvalidSignatureException"
	IncompleteSignatureException        = "IncompleteSignatureException"
)

// Error is an ECS error answer.
type Error struct {
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Status is the HTTP status ECS answers the error with.
func (e *Error) Status() int {
	switch e.Type {
	case ServerException:
		return http.StatusInternalServerError
	case MissingAuthenticationTokenException, AccessDeniedException:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

// Errorf makes an ECS error of the given type.
func Errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// InvalidParameter names the request member at fault, as ECS's messages do.
func InvalidParameter(member, format string, args ...any) *Error {
	return &Error{Type: InvalidParameterException, Message: member + ": " + fmt.Sprintf(format, args...)}
}

// AsError returns err as an ECS error: itself when it is one, a decoding error as
// the SerializationException (wrong JSON type) or InvalidParameterException (unknown
// member) ECS's clients would see, and anything else as a ServerException.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return InvalidParameter(fe.Path, "%s", fe.Msg)
	}
	return &Error{Type: ServerException, Message: err.Error()}
}

// ContentType is awsJson1_1's media type.
const ContentType = "application/x-amz-json-1.1"

// NewRequestID returns a request ID in AWS's format (a UUID).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// WriteError answers an error in ECS's shape: {"__type": ..., "message": ...}.
func WriteError(w http.ResponseWriter, requestID string, e *Error) {
	body, _ := json.Marshal(map[string]string{"__type": e.Type, "message": e.Message})
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("x-amzn-RequestId", requestID)
	w.Header().Set("x-amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status())
	_, _ = w.Write(body)
}

// WriteOutput answers an operation's output.
func WriteOutput(w http.ResponseWriter, requestID string, out any) {
	body, err := Marshal(out)
	if err != nil {
		WriteError(w, requestID, AsError(err))
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
