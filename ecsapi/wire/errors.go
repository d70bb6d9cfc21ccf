package wire

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
)

// Error types (the __type of an error response). Every one is an HTTP 400 except
// the server faults (ServerException, InternalServiceException,
// ConcurrentUpdateException): the SDKs retry 5xx answers, and a client error retried
// is a client error repeated.
const (
	// ECS's.
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
	// Application Auto Scaling's.
	ValidationException       = "ValidationException"
	ObjectNotFoundException   = "ObjectNotFoundException"
	ConcurrentUpdateException = "ConcurrentUpdateException"
	LimitExceededException    = "LimitExceededException"
	InvalidNextTokenException = "InvalidNextTokenException"
	InternalServiceException  = "InternalServiceException"
	// Authentication, as every AWS JSON service answers it.
	MissingAuthenticationTokenException = "MissingAuthenticationTokenException"
	UnrecognizedClientException         = "UnrecognizedClientException"
	InvalidSignatureException           = "InvalidSignatureException"
	IncompleteSignatureException        = "IncompleteSignatureException"
)

// Error is an error answer.
type Error struct {
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Status is the HTTP status the error is answered with: 500 for the faults the
// models call the server's (a ConcurrentUpdateException is worth retrying).
func (e *Error) Status() int {
	switch e.Type {
	case ServerException, InternalServiceException, ConcurrentUpdateException:
		return http.StatusInternalServerError
	case MissingAuthenticationTokenException, AccessDeniedException:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

// Errorf makes an error of the given type.
func Errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// InvalidParameter is ECS's InvalidParameterException naming the request member at
// fault, as ECS's messages do.
func InvalidParameter(member, format string, args ...any) *Error {
	return ECS.InvalidParameter(member, format, args...)
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

// WriteError answers an error in awsJson1_1's shape: {"__type": ..., "message": ...},
// the message member spelt as the service's model spells it ("Message" for
// Application Auto Scaling; the SDKs read either).
func (s *Service) WriteError(w http.ResponseWriter, requestID string, e *Error) {
	body, _ := json.Marshal(map[string]string{"__type": e.Type, s.memberName("Message"): e.Message})
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("x-amzn-RequestId", requestID)
	w.Header().Set("x-amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status())
	_, _ = w.Write(body)
}

// WriteOutput answers an operation's output.
func (s *Service) WriteOutput(w http.ResponseWriter, requestID string, out any) {
	body, err := s.Marshal(out)
	if err != nil {
		s.WriteError(w, requestID, s.AsError(err))
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
