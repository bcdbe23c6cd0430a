package controller

// AlterUserScramCredentials (key 51), v0 (KIP-554).
//
// Upsertions carry the salted password (the client salts and iterates the
// password: kadm, kafka-configs.sh); the controller derives StoredKey and
// ServerKey from it and writes only those, with the salt and iterations, in
// a UserScramCredential record. Deletions write RemoveUserScramCredential.
// Kafka's checks, per alteration: an unknown mechanism ->
// UNSUPPORTED_SASL_MECHANISM; an empty user name, iterations outside
// [4096, 16384], an empty salt or salted password ->
// UNACCEPTABLE_CREDENTIAL; deleting a credential that does not exist ->
// RESOURCE_NOT_FOUND; the same user and mechanism altered twice in the
// request -> DUPLICATE_RESOURCE. The answer has one result per user, in
// the order users first appear; a user with any failed alteration keeps
// its credentials unchanged. Every accepted alteration goes into one Raft
// entry.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/security/sasl"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleAlterUserScramCredentials(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	plan := planScramAlterations(c.fsm.current(), r)
	var recs []record
	for _, u := range plan.users {
		if plan.errs[u] == nil {
			recs = append(recs, plan.recs[u]...)
		}
	}
	var proposeErr error
	if len(recs) > 0 {
		if _, err := c.propose(ls, recs); err != nil {
			proposeErr = err
			c.log.Warn("SCRAM credential change failed", "error", err)
		}
	}
	for _, u := range plan.users {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = u
		err := plan.errs[u]
		if err == nil {
			err = proposeErr
		}
		res.ErrorCode, res.ErrorMessage = kafkaError(err)
		if err == nil {
			c.log.Info("SCRAM credentials changed", "user", u, "changes", len(plan.recs[u]))
		}
		resp.Results = append(resp.Results, res)
	}
	return resp
}

// scramPlan is what an AlterUserScramCredentials would write, per user.
type scramPlan struct {
	users []string // in order of first appearance
	recs  map[string][]record
	errs  map[string]error // the first failure of each user
}

// planScramAlterations checks every alteration of r against img.
func planScramAlterations(img *image.Image, r *kmsg.AlterUserSCRAMCredentialsRequest) scramPlan {
	p := scramPlan{recs: map[string][]record{}, errs: map[string]error{}}
	type pair struct {
		user string
		mech int8
	}
	seen := map[pair]bool{}
	note := func(user string, mech int8) {
		if _, ok := p.recs[user]; !ok {
			p.users = append(p.users, user)
			p.recs[user] = nil
		}
		if seen[pair{user, mech}] && p.errs[user] == nil {
			p.errs[user] = errf(kerr.DuplicateResource, "a user credential cannot be altered twice in the same request")
		}
		seen[pair{user, mech}] = true
	}
	fail := func(user string, err error) {
		if p.errs[user] == nil {
			p.errs[user] = err
		}
	}
	for _, d := range r.Deletions {
		note(d.Name, d.Mechanism)
		if err := checkScramTarget(d.Name, d.Mechanism); err != nil {
			fail(d.Name, err)
			continue
		}
		if _, ok := img.ScramUsers[d.Name][d.Mechanism]; !ok {
			fail(d.Name, errf(kerr.ResourceNotFound, "attempt to delete a user credential that does not exist"))
			continue
		}
		p.recs[d.Name] = append(p.recs[d.Name], record{Type: metalog.TypeRemoveUserScramCredential,
			RemoveUserScramCredential: &metalog.RemoveUserScramCredentialRecord{Name: d.Name, Mechanism: d.Mechanism}})
	}
	for _, u := range r.Upsertions {
		note(u.Name, u.Mechanism)
		if err := checkScramTarget(u.Name, u.Mechanism); err != nil {
			fail(u.Name, err)
			continue
		}
		rec, err := scramCredentialRecord(u.Name, u.Mechanism, u.SaltedPassword, u.Salt, u.Iterations)
		if err != nil {
			fail(u.Name, err)
			continue
		}
		p.recs[u.Name] = append(p.recs[u.Name], rec)
	}
	return p
}

func checkScramTarget(user string, mech int8) error {
	if _, ok := sasl.ScramMechanismOf(mech); !ok {
		return errf(kerr.UnsupportedSaslMechanism, "unknown SCRAM mechanism %d", mech)
	}
	if user == "" {
		return errf(kerr.UnacceptableCredential, "username must not be empty")
	}
	return nil
}

// scramCredentialRecord checks an upsertion and derives its record.
func scramCredentialRecord(user string, mech int8, salted, salt []byte, iterations int32) (record, error) {
	m, ok := sasl.ScramMechanismOf(mech)
	if !ok {
		return record{}, errf(kerr.UnsupportedSaslMechanism, "unknown SCRAM mechanism %d", mech)
	}
	switch {
	case iterations < sasl.MinIterations:
		return record{}, errf(kerr.UnacceptableCredential, "too few iterations: %d (the minimum is %d)", iterations, sasl.MinIterations)
	case iterations > sasl.MaxIterations:
		return record{}, errf(kerr.UnacceptableCredential, "too many iterations: %d (the maximum is %d)", iterations, sasl.MaxIterations)
	case len(salt) == 0:
		return record{}, errf(kerr.UnacceptableCredential, "salt must not be empty")
	case len(salted) == 0:
		return record{}, errf(kerr.UnacceptableCredential, "salted password must not be empty")
	}
	cred, err := sasl.CredentialFromSalted(m, salted, salt, iterations)
	if err != nil {
		return record{}, errf(kerr.UnacceptableCredential, "%v", err)
	}
	return record{Type: metalog.TypeUserScramCredential, UserScramCredential: &metalog.UserScramCredentialRecord{
		Name: user, Mechanism: mech, Salt: cred.Salt, Iterations: iterations,
		StoredKey: cred.StoredKey, ServerKey: cred.ServerKey}}, nil
}

// BootstrapScram is one credential to write when the cluster's metadata is
// initialized (KIP-900's kafka-storage format --add-scram).
type BootstrapScram struct {
	Mechanism  sasl.Mechanism
	User       string
	Password   string
	Salt       []byte // nil: a random salt
	Iterations int32
}

// bootstrapScramRecords derives the records of the bootstrap credentials.
func bootstrapScramRecords(creds []BootstrapScram) ([]record, error) {
	var recs []record
	for _, b := range creds {
		salt := b.Salt
		if len(salt) == 0 {
			salt = sasl.NewSalt()
		}
		salted, err := sasl.SaltedPassword(b.Mechanism, b.Password, salt, b.Iterations)
		if err != nil {
			return nil, fmt.Errorf("bootstrap SCRAM credential of %q: %w", b.User, err)
		}
		rec, err := scramCredentialRecord(b.User, b.Mechanism.ScramType(), salted, salt, b.Iterations)
		if err != nil {
			return nil, fmt.Errorf("bootstrap SCRAM credential of %q: %w", b.User, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// ParseBootstrapScram parses KIP-900's --add-scram argument:
// MECHANISM=[name=USER,password=PASSWORD[,iterations=N]], a value
// optionally in double quotes (needed for one holding ',' or ']').
// Iterations default to 4096.
func ParseBootstrapScram(s string) (BootstrapScram, error) {
	mechStr, rest, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return BootstrapScram{}, fmt.Errorf("%q: want MECHANISM=[name=USER,password=PASSWORD]", s)
	}
	m, err := sasl.ParseMechanism(mechStr)
	if err != nil || m.ScramType() == 0 {
		return BootstrapScram{}, fmt.Errorf("%q: the mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512", s)
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "[") || !strings.HasSuffix(rest, "]") {
		return BootstrapScram{}, fmt.Errorf("%q: the credential goes in brackets: %s=[name=USER,password=PASSWORD]", s, m)
	}
	b := BootstrapScram{Mechanism: m, Iterations: sasl.MinIterations}
	fields, err := splitScramFields(rest[1 : len(rest)-1])
	if err != nil {
		return BootstrapScram{}, fmt.Errorf("%q: %w", s, err)
	}
	for k, v := range fields {
		switch k {
		case "name":
			b.User = v
		case "password":
			b.Password = v
		case "iterations":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return BootstrapScram{}, fmt.Errorf("%q: iterations %q is not a number", s, v)
			}
			b.Iterations = int32(n)
		default:
			return BootstrapScram{}, fmt.Errorf("%q: unknown field %q (use name, password, iterations)", s, k)
		}
	}
	if err := b.validate(); err != nil {
		return BootstrapScram{}, fmt.Errorf("%q: %w", s, err)
	}
	return b, nil
}

func (b BootstrapScram) validate() error {
	switch {
	case b.Mechanism.ScramType() == 0:
		return fmt.Errorf("mechanism %q is not SCRAM-SHA-256 or SCRAM-SHA-512", b.Mechanism)
	case b.User == "":
		return errors.New("name is missing")
	case b.Password == "":
		return errors.New("password is missing")
	case b.Iterations < sasl.MinIterations || b.Iterations > sasl.MaxIterations:
		return fmt.Errorf("iterations %d outside [%d, %d]", b.Iterations, sasl.MinIterations, sasl.MaxIterations)
	}
	return nil
}

// splitScramFields splits k=v,k="v, with comma",... into a map.
func splitScramFields(s string) (map[string]string, error) {
	out := map[string]string{}
	for len(s) > 0 {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("field %q has no value", s)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("field %s: unterminated quote", k)
			}
			v, rest = rest[1:1+end], rest[2+end:]
			if rest != "" && !strings.HasPrefix(rest, ",") {
				return nil, fmt.Errorf("field %s: text after the closing quote", k)
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("field %s is given twice", k)
		}
		out[k] = v
		s = rest
	}
	return out, nil
}
