package wire

// SASL on the wire (KIP-43, KIP-152, KIP-368): SaslHandshake (17) v0-v1
// and SaslAuthenticate (36) v0-v2, built into every Registry.
//
// On a SASL_* listener a connection may send only ApiVersions, SaslHandshake
// and SaslAuthenticate until it has authenticated; any other request closes
// it (as Kafka does). SaslHandshake names the mechanism (not enabled ->
// UNSUPPORTED_SASL_MECHANISM with the enabled ones, then close); each
// SaslAuthenticate carries one token of the exchange. A failed exchange is
// answered SASL_AUTHENTICATION_FAILED and the connection closed after the
// answer. A successful one sets the connection's principal (User:NAME)
// and, with Config.MaxReauth (connections.max.reauth.ms), the session's
// end: SaslAuthenticate v1+ says session_lifetime_ms, and a request other
// than those three after the end closes the connection. The client
// re-authenticates (SaslHandshake, SaslAuthenticate again) on the same
// connection, with the same mechanism, as the same user.
//
// After SaslHandshake v0 (KIP-43's first form) the tokens travel raw: each
// a size-prefixed frame without a Kafka header, answered the same way, and
// a failure closes the connection without an answer (serveRawSASL).
// kcat (librdkafka), franz-go, sarama and the Java client use v1; v0 is
// advertised because librdkafka requires it in ApiVersions. On a listener
// without SASL both requests get ILLEGAL_SASL_STATE.
//
// The state is the connection's own (connAuth), read and written only by
// its goroutine.

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/security/sasl"
)

// connAuth is a connection's SASL state.
type connAuth struct {
	// exchange is the authentication in progress (after SaslHandshake),
	// mechanism its mechanism.
	exchange  sasl.Exchange
	mechanism sasl.Mechanism
	// user is the authenticated user ("" before the first success),
	// userMechanism the mechanism it used.
	user          string
	userMechanism sasl.Mechanism
	// expires ends the session (zero: never).
	expires time.Time
	// closeAfterResponse closes the connection once the current answer
	// is written (a failed authentication).
	closeAfterResponse bool
	// raw: the exchange's tokens come as raw frames (SaslHandshake v0).
	raw bool
}

// saslKeys are the requests a connection may send before it authenticated
// or after its session expired.
func saslAllowed(key int16) bool { return key == 18 || key == 17 || key == 36 }

// checkAuthenticated refuses (closing the connection) a request a SASL
// listener may not serve on this connection yet.
func (s *Server) checkAuthenticated(c *Conn, h Header, now time.Time) error {
	if !s.cfg.Protocol.SASL() || saslAllowed(h.Key) {
		return nil
	}
	if c.auth.user == "" {
		return fmt.Errorf("%s before SASL authentication (the listener is %s)", kmsg.NameForKey(h.Key), s.cfg.Protocol)
	}
	if !c.auth.expires.IsZero() && !now.Before(c.auth.expires) {
		return fmt.Errorf("%s after the SASL session of %q expired (connections.max.reauth.ms %s): the client did not re-authenticate",
			kmsg.NameForKey(h.Key), c.auth.user, s.cfg.MaxReauth)
	}
	return nil
}

func handleSASLHandshake(_ context.Context, req *Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	c := req.Conn
	srv := c.server.cfg.SASL
	if !c.server.cfg.Protocol.SASL() || srv == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	resp.SupportedMechanisms = srv.Enabled()
	log := c.server.cfg.Logger
	if c.auth.exchange != nil {
		log.Warn("closing connection: SASL handshake while an authentication is in progress", "listener", c.server.cfg.Name, "remote", c.RemoteAddr().String())
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.auth.closeAfterResponse = true
		return resp, nil
	}
	if c.auth.user != "" && r.Mechanism != string(c.auth.userMechanism) {
		log.Warn("closing connection: re-authentication with another mechanism", "listener", c.server.cfg.Name,
			"remote", c.RemoteAddr().String(), "user", c.auth.user, "mechanism", r.Mechanism, "first_mechanism", c.auth.userMechanism)
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.auth.closeAfterResponse = true
		return resp, nil
	}
	ex, m, ok := srv.Start(r.Mechanism)
	if !ok {
		log.Warn("closing connection: SASL mechanism not enabled", "listener", c.server.cfg.Name,
			"remote", c.RemoteAddr().String(), "mechanism", r.Mechanism, "enabled", resp.SupportedMechanisms)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		c.auth.closeAfterResponse = true
		return resp, nil
	}
	c.auth.exchange, c.auth.mechanism = ex, m
	c.auth.raw = r.Version == 0
	return resp, nil
}

// serveRawSASL serves one raw token frame (after SaslHandshake v0): the
// token is the frame, the answer a size-prefixed frame of the server's
// token. A failure closes the connection (returns an error).
func (s *Server) serveRawSASL(c *Conn, token []byte, received time.Time) error {
	answer, done, err := c.auth.exchange.Step(token)
	if err == nil && done && c.auth.user != "" && c.auth.exchange.User() != c.auth.user {
		err = fmt.Errorf("re-authentication as %q on a connection of %q", c.auth.exchange.User(), c.auth.user)
	}
	if err != nil {
		s.cfg.Logger.Warn("SASL authentication failed; closing connection", "listener", s.cfg.Name, "remote", c.RemoteAddr().String(),
			"mechanism", c.auth.mechanism, "handshake_version", 0, "error", err)
		return err
	}
	if done {
		s.authenticated(c, received)
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(answer)), uint32(len(answer)))
	_, err = c.Conn.Write(append(frame, answer...))
	return err
}

// authenticated ends a successful exchange: the connection's user,
// principal and session end. It returns the session lifetime (0: none).
func (s *Server) authenticated(c *Conn, received time.Time) time.Duration {
	reauth := c.auth.user != ""
	c.auth.user, c.auth.userMechanism = c.auth.exchange.User(), c.auth.mechanism
	c.SetPrincipal("User:" + c.auth.user)
	c.auth.exchange, c.auth.raw = nil, false
	c.auth.expires = time.Time{}
	if s.cfg.MaxReauth > 0 {
		c.auth.expires = received.Add(s.cfg.MaxReauth)
	}
	s.cfg.Logger.Debug("SASL authentication", "listener", s.cfg.Name, "remote", c.RemoteAddr().String(),
		"user", c.auth.user, "mechanism", c.auth.userMechanism, "reauthentication", reauth)
	return s.cfg.MaxReauth
}

func handleSASLAuthenticate(_ context.Context, req *Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := req.Conn
	cfg := &c.server.cfg
	if !cfg.Protocol.SASL() || cfg.SASL == nil || c.auth.exchange == nil || c.auth.raw {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate without a SaslHandshake naming the mechanism first")
		c.auth.closeAfterResponse = cfg.Protocol.SASL()
		return resp, nil
	}
	answer, done, err := c.auth.exchange.Step(r.SASLAuthBytes)
	mech := c.auth.mechanism
	if err == nil && done && c.auth.user != "" && c.auth.exchange.User() != c.auth.user {
		err = fmt.Errorf("re-authentication as %q on a connection of %q: a connection cannot change its principal", c.auth.exchange.User(), c.auth.user)
	}
	if err != nil {
		cfg.Logger.Warn("SASL authentication failed; closing connection", "listener", cfg.Name, "remote", c.RemoteAddr().String(),
			"mechanism", mech, "error", err)
		c.auth.exchange = nil
		c.auth.closeAfterResponse = true
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", mech))
		return resp, nil
	}
	resp.SASLAuthBytes = answer
	if !done {
		return resp, nil
	}
	resp.SessionLifetimeMillis = c.server.authenticated(c, req.Received).Milliseconds()
	return resp, nil
}
