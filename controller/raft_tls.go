package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/skein-io/skein/internal/security"
)

// tlsStreamLayer is hashicorp/raft's stream layer over TLS: it accepts
// TLS connections on a listener and dials voters with TLS, so the Raft
// transport (raft.NetworkTransport) is the same as over plain TCP.
type tlsStreamLayer struct {
	net.Listener // a tls.NewListener
	advertise    net.Addr
	material     *security.TLS
}

// Dial connects to a voter's Raft address and completes the handshake.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := net.Dialer{Timeout: timeout}
	return security.DialTLS(ctx, &d, string(address), l.material.ClientConfig())
}

// Addr is the address other voters dial (the advertised one when set).
func (l *tlsStreamLayer) Addr() net.Addr {
	if l.advertise != nil {
		return l.advertise
	}
	return l.Listener.Addr()
}

// newTLSTransport is raft.NewTCPTransportWithLogger over TLS: server and
// client sides both use the node's TLS material (mutual TLS when it has a
// client CA).
func newTLSTransport(bind string, advertise net.Addr, material *security.TLS, maxPool int, timeout time.Duration, log hclog.Logger) (*raft.NetworkTransport, error) {
	if !material.HasCert() {
		return nil, errors.New("raft over TLS needs a certificate and key (--tls-cert, --tls-key)")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
			_ = ln.Close()
			return nil, fmt.Errorf("raft address %s is not advertisable: give the node's address in --initial-controllers", ln.Addr())
		}
	}
	layer := &tlsStreamLayer{Listener: tls.NewListener(ln, material.ServerConfig()), advertise: advertise, material: material}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: maxPool, Timeout: timeout, Logger: log,
	}), nil
}
