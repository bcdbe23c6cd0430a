package controller

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

// apiError is a Kafka error code with a message for the response.
type apiError struct {
	code *kerr.Error
	msg  string
}

func (e *apiError) Error() string { return e.code.Message + ": " + e.msg }

func errf(code *kerr.Error, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// kafkaError maps any error to the Kafka code and message to answer with:
// the one table from internal errors to codes.
func kafkaError(err error) (int16, *string) {
	var ae *apiError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ae):
		return ae.code.Code, &ae.msg
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrAbortedByRestore), errors.Is(err, errStaleTerm):
		msg := "this controller is not (or no longer) the active controller: " + err.Error()
		return kerr.NotController.Code, &msg
	case errors.Is(err, raft.ErrEnqueueTimeout):
		msg := "timed out writing to the metadata log"
		return kerr.RequestTimedOut.Code, &msg
	default:
		msg := err.Error()
		return kerr.UnknownServerError.Code, &msg
	}
}

// notControllerResponse answers req with NOT_CONTROLLER in every error code
// it has, for requests that only the active controller serves.
func notControllerResponse(req kmsg.Request) kmsg.Response {
	return wire.ErrorResponse(req, kerr.NotController.Code, "")
}

// errStaleTerm discards an entry decided in another controller term than
// the one it was written in: its decision read an image that may lack the
// entries of the terms in between.
var errStaleTerm = errors.New("entry decided in another controller term")
