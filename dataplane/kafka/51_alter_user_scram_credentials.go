package kafka

// AlterUserScramCredentials (API key 51), version 0 (KIP-554).
//
//   - Forwarded to the active controller, which checks each alteration
//     (UNSUPPORTED_SASL_MECHANISM, UNACCEPTABLE_CREDENTIAL,
//     RESOURCE_NOT_FOUND, DUPLICATE_RESOURCE) and writes the derived
//     credentials (never the salted password) to the metadata log.
//   - Then the broker waits (at most adminWaitMax) until its own image shows
//     the changes of every user that succeeded, so the client's next
//     DescribeUserScramCredentials, or its next login, here sees them.
//   - Controller unreachable: REQUEST_TIMED_OUT / NOT_CONTROLLER per user.

import (
	"bytes"
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleAlterUserScramCredentials(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	version := r.Version
	fctx, cancel := context.WithTimeout(ctx, forwardTimeoutDefault)
	defer cancel()
	resp, err := h.forward(fctx, r)
	ar, ok := resp.(*kmsg.AlterUserSCRAMCredentialsResponse)
	if err == nil && !ok {
		err = errUnexpectedResponse
	}
	if err != nil {
		h.dataLog().Warn("alter user SCRAM credentials: forwarding to the controller failed", "error", err)
		out := kmsg.NewPtrAlterUserSCRAMCredentialsResponse()
		var users []string
		for _, d := range r.Deletions {
			users = append(users, d.Name)
		}
		for _, u := range r.Upsertions {
			users = append(users, u.Name)
		}
		for i, u := range users {
			if slices.Contains(users[:i], u) {
				continue
			}
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode, res.ErrorMessage = u, forwardErrorCode(err), stringPtr(err.Error())
			out.Results = append(out.Results, res)
		}
		out.SetVersion(version)
		return out, nil
	}
	ar.SetVersion(version)
	succeeded := map[string]bool{}
	for _, res := range ar.Results {
		succeeded[res.User] = res.ErrorCode == 0
	}
	wctx, wcancel := context.WithTimeout(ctx, adminWaitMax)
	defer wcancel()
	if _, ok := h.waitImage(wctx, func(img *image.Image) bool {
		for _, d := range r.Deletions {
			if _, has := img.ScramUsers[d.Name][d.Mechanism]; succeeded[d.Name] && has {
				return false
			}
		}
		for _, u := range r.Upsertions {
			c, has := img.ScramUsers[u.Name][u.Mechanism]
			if succeeded[u.Name] && (!has || !bytes.Equal(c.Salt, u.Salt) || c.Iterations != u.Iterations) {
				return false
			}
		}
		return true
	}); !ok {
		h.dataLog().Warn("alter user SCRAM credentials: this broker's metadata does not show the change yet")
	}
	return ar, nil
}
