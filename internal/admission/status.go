package admission

import (
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// reasons are the refusal reasons a create can be answered with.
var reasons = map[string]bool{
	gamev1.GameSessionFullReason:             true,
	gamev1.PlayerSessionCreationDeniedReason: true,
	gamev1.InvalidGameSessionStatusReason:    true,
	gamev1.InvalidGroupReason:                true,
	gamev1.GameSessionNotFoundReason:         true,
}

// Forbidden is the answer to a refused create: 403 Forbidden whose details carry the refusal as data, a
// StatusCause with the reason as its type and the explanation as its message. kube-apiserver passes a
// webhook's status through to the client with its details.
func Forbidden(r Refusal) *apierrors.StatusError {
	err := apierrors.NewForbidden(gamev1.GroupVersion.WithResource("playersessions").GroupResource(), r.PlayerSession.Name, errors.New(r.Reason+": "+r.Message))
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseType(r.Reason), Message: r.Message}}
	return err
}

// RefusalOf returns the refusal reason and message carried by the error of a create that Forbidden
// answered, and false for any other error.
func RefusalOf(err error) (reason, message string, ok bool) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return "", "", false
	}
	s := status.Status()
	if s.Code != http.StatusForbidden || s.Details == nil {
		return "", "", false
	}
	for _, c := range s.Details.Causes {
		if reasons[string(c.Type)] {
			return string(c.Type), c.Message, true
		}
	}
	return "", "", false
}
