package kafka

// DescribeUserScramCredentials (API key 50), version 0 (KIP-554).
//
//   - Answered from this broker's metadata image, as KRaft brokers do: each
//     user's mechanisms and iteration counts (never salts or keys).
//   - Users null: every user with a credential. A user named twice ->
//     DUPLICATE_RESOURCE for that user; a user without any credential ->
//     RESOURCE_NOT_FOUND.

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeUserScramCredentials(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	img := h.image()
	var users []string
	if r.Users == nil {
		for u := range img.ScramUsers {
			users = append(users, u)
		}
		sort.Strings(users)
	} else {
		for _, u := range r.Users {
			users = append(users, u.Name)
		}
	}
	count := map[string]int{}
	for _, u := range users {
		count[u]++
	}
	done := map[string]bool{}
	for _, u := range users {
		if done[u] {
			continue
		}
		done[u] = true
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		switch {
		case count[u] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = stringPtr("cannot describe SCRAM credentials for the same user twice in a single request")
		case len(img.ScramUsers[u]) == 0:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = stringPtr("attempt to describe a user credential that does not exist")
		default:
			res.CredentialInfos = scramCredentialInfos(img.ScramUsers[u])
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// scramCredentialInfos lists a user's mechanisms in mechanism order.
func scramCredentialInfos(m map[int8]image.ScramCredential) []kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo {
	var out []kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo
	for mech, c := range m {
		info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
		info.Mechanism, info.Iterations = mech, c.Iterations
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mechanism < out[j].Mechanism })
	return out
}
