package wire

import (
	"errors"
	"fmt"
)

// Service is one AWS service's dialect of awsJson1_1: how the members of its SDK's
// shapes are spelt on the wire, and which of its error types answer the failures
// every service has.
type Service struct {
	// Name is how messages name the service.
	Name string
	// LowerCamel: members are the SDK's Go field names with the first letter
	// lowered (ECS's "taskDefinition"); otherwise they are the Go names themselves
	// (Application Auto Scaling's "ResourceId").
	LowerCamel bool
	// Invalid answers a request member that is wrong; Server a failure of the
	// server or the apiserver; Unsupported an action of the model that Berth does
	// not serve; Conflict a write that lost a race with another; NotFound an object
	// that went away during the call.
	Invalid, Server, Unsupported, Conflict, NotFound string
}

// The services `berth api` serves.
var (
	ECS = &Service{
		Name: "ECS", LowerCamel: true,
		Invalid: InvalidParameterException, Server: ServerException, Unsupported: UnsupportedFeatureException,
		Conflict: ClientException, NotFound: ClientException,
	}
	// ApplicationAutoScaling has no type for an action it does not serve: such a
	// call is refused as invalid, as its API refuses an unsupported service
	// namespace.
	ApplicationAutoScaling = &Service{
		Name: "Application Auto Scaling", LowerCamel: false,
		Invalid: ValidationException, Server: InternalServiceException, Unsupported: ValidationException,
		Conflict: ConcurrentUpdateException, NotFound: ObjectNotFoundException,
	}
)

// InvalidParameter is the service's error for a wrong request member, naming it.
func (s *Service) InvalidParameter(member, format string, args ...any) *Error {
	return &Error{Type: s.Invalid, Message: member + ": " + fmt.Sprintf(format, args...)}
}

// AsError returns err as the service's error: itself when it is one (the generic
// types ECS's helpers make, which both services share, under this service's own
// names), a decoding error as the invalid-member error naming the member, and
// anything else as the server's fault.
func (s *Service) AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return s.own(e)
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return s.InvalidParameter(fe.Path, "%s", fe.Msg)
	}
	return &Error{Type: s.Server, Message: err.Error()}
}

// own renames ECS's generic error types to this service's. ClientException is not
// renamed: ECS uses it for several failures, and the code both services share
// answers conflicts and vanished objects with Conflict and NotFound instead.
func (s *Service) own(e *Error) *Error {
	typ := e.Type
	switch typ {
	case ECS.Invalid:
		typ = s.Invalid
	case ECS.Server:
		typ = s.Server
	case ECS.Unsupported:
		typ = s.Unsupported
	}
	if typ == e.Type {
		return e
	}
	return &Error{Type: typ, Message: e.Message}
}
