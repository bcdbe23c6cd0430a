// Package partition owns the broker's partition replicas: the storage log
// of each, its role (leader or follower, from metadata), its high watermark,
// and the waits (purgatories) of produce and fetch requests on it.
//
// This file is the contract; bodies are stubs until the implementation lands.
package partition

import (
	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// Manager holds every replica hosted on this broker.
type Manager struct{}

// NewManager returns a manager over the broker's storage.
func NewManager(nodeID int32, store *storage.Manager, logger hclog.Logger) *Manager { panic("stub") }

// ApplyImage makes the hosted replicas match the image: creates logs for new
// assignments, deletes logs of deleted topics, sets leader/follower roles and
// epochs, and applies topic config changes. Called in image order.
func (m *Manager) ApplyImage(img *image.Image) { panic("stub") }

// Close stops background work. Idempotent.
func (m *Manager) Close() error { panic("stub") }
