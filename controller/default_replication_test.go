package controller

import "testing"

func TestDefaultReplication(t *testing.T) {
	tests := []struct {
		name                string
		configured, brokers int
		configs             map[string]string
		wantRF              int
		wantMinISR          string // "" when not set
	}{
		{name: "one broker", configured: 3, brokers: 1, configs: map[string]string{}, wantRF: 1},
		{name: "two brokers", configured: 3, brokers: 2, configs: map[string]string{}, wantRF: 2},
		{name: "three brokers", configured: 3, brokers: 3, configs: map[string]string{}, wantRF: 3, wantMinISR: "2"},
		{name: "five brokers", configured: 3, brokers: 5, configs: map[string]string{}, wantRF: 3, wantMinISR: "2"},
		{name: "explicit min ISR kept", configured: 3, brokers: 3, configs: map[string]string{"min.insync.replicas": "1"}, wantRF: 3, wantMinISR: "1"},
		{name: "configured 1", configured: 1, brokers: 3, configs: map[string]string{}, wantRF: 1},
		{name: "no broker: configured (refused later)", configured: 3, brokers: 0, configs: map[string]string{}, wantRF: 3, wantMinISR: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf := defaultReplication(tt.configured, tt.brokers, tt.configs)
			if rf != tt.wantRF || tt.configs["min.insync.replicas"] != tt.wantMinISR {
				t.Errorf("rf %d min.insync.replicas %q, want %d %q", rf, tt.configs["min.insync.replicas"], tt.wantRF, tt.wantMinISR)
			}
		})
	}
}
