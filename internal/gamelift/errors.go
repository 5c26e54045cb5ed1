package gamelift

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/storage"

	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/index"
)

func invalid(format string, args ...any) *Error {
	return errorf(InvalidRequestException, fmt.Sprintf(format, args...))
}

func internal(err error) *Error { return errorf(InternalServiceException, err.Error()) }

// kubeError is the GameLift error of an error from kube-apiserver or the index, about subject ("Player
// session psess-...", "Game session arn:..."): the one place where the endpoint maps them.
func kubeError(err error, subject string) *Error {
	if reason, message, ok := admission.RefusalOf(err); ok {
		return refusalError(reason, message) // the admission webhook refused a create; its reason is a StatusCause
	}
	switch {
	case apierrors.IsConflict(err):
		return invalid("%s changed concurrently; retry", subject)
	case apierrors.IsInvalid(err):
		return invalid("%s", err.Error())
	case apierrors.IsNotFound(err):
		return errorf(NotFoundException, subject+" not found")
	case apierrors.IsResourceExpired(err) || apierrors.IsBadRequest(err):
		return invalid("Invalid NextToken: %s", err.Error()) // the index refused a continue token
	case storage.IsTooLargeResourceVersion(err):
		// The token comes from a replica whose index is ahead of this one's: a retryable server error (the
		// SDKs retry 5xx), never a page of older data.
		return errorf(InternalServiceException, "This endpoint has not yet seen the data the NextToken was issued for; retry")
	}
	return internal(err)
}

// DefaultDecisionTimeout is how long a call waits for the operator by default (DecisionTimeout).
const DefaultDecisionTimeout = 10 * time.Second

// decisionContext bounds a call's waits for the operator (an admission decision, a new game session's id)
// by DecisionTimeout.
func (s *Server) decisionContext(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	timeout := s.DecisionTimeout
	if timeout == 0 {
		timeout = DefaultDecisionTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, cancel, timeout
}

// await is the endpoint's one way of waiting for the operator: check at once, then again at every change
// that changes signals, until check reports true or ctx ends.
func await(ctx context.Context, changes *index.Signal, check func() (bool, error)) error {
	return index.Until(ctx, changes.Next, check)
}
