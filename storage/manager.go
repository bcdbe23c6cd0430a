package storage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Files in the data directory, named as Kafka names them.
const (
	cleanShutdownFile      = ".kafka_cleanshutdown"
	recoveryCheckpointFile = "recovery-point-offset-checkpoint"
	partitionMetadataFile  = "partition.metadata"
	lockFile               = ".lock"
	deleteSuffix           = "-delete"
)

// Manager owns one data directory: it opens (and after an unclean stop,
// recovers) every partition log in it, runs retention and checkpoints, and on
// Close writes the clean-shutdown marker.
type Manager struct {
	cfg    Config
	logger hclog.Logger
	lock   *os.File
	clean  bool
	// previousEpoch is the broker epoch the clean-shutdown marker found at
	// open recorded; -1 without a marker or with one that has no epoch.
	previousEpoch int64
	// brokerEpoch is what Close records in the marker (SetBrokerEpoch).
	brokerEpoch atomic.Int64

	mu     sync.Mutex
	logs   map[TopicPartition]*Log
	closed bool
	// creating holds the logs GetOrCreate is creating outside mu; the
	// channel closes when the creation is over (and the log in logs, if
	// it succeeded).
	creating map[TopicPartition]chan struct{}
	// inflight counts the creations under way; Close waits for them.
	inflight sync.WaitGroup

	stop        chan struct{}
	done        chan struct{}
	cleanerDone chan struct{}
	started     bool

	// ckptMu guards cleanerCkpt, the cleaner-offset-checkpoint contents: a
	// log listed there was compacted (or copied compacted batches) and may
	// have offset gaps; its value is the offset cleaned up to.
	ckptMu      sync.Mutex
	cleanerCkpt map[TopicPartition]int64
}

// OpenManager opens dir, creating it if needed. Without a clean-shutdown
// marker every log is recovered from its recovery point.
func OpenManager(cfg Config) (*Manager, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, mapIOError(err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, mapIOError(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("data directory %s is in use by another process (%v); stop it or choose another --data-dir", cfg.Dir, err)
	}
	m := &Manager{
		cfg: cfg, logger: cfg.Logger.Named("storage"), lock: lock,
		logs: map[TopicPartition]*Log{}, creating: map[TopicPartition]chan struct{}{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	marker := filepath.Join(cfg.Dir, cleanShutdownFile)
	m.clean, m.previousEpoch = m.readCleanShutdown(marker)
	m.brokerEpoch.Store(-1)
	recovery := m.readRecoveryPoints()
	m.cleanerCkpt = m.readCleanerCheckpoint()
	start := cfg.Now()
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	// Entries come sorted by name: jobs, and so the error reported when
	// several logs fail, are in name order.
	type openJob struct {
		dir string
		tp  TopicPartition
	}
	var jobs []openJob
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(cfg.Dir, e.Name())
		if strings.HasSuffix(e.Name(), deleteSuffix) {
			if err := removeAll(dir); err != nil {
				m.logger.Warn("cannot remove deleted log", "dir", dir, "error", err)
			}
			continue
		}
		if tp, ok := parseLogDirName(e.Name()); ok {
			jobs = append(jobs, openJob{dir: dir, tp: tp})
		}
	}
	// Open (after an unclean stop: recover) the logs on at most
	// RecoveryThreads goroutines. Each worker writes only its own slot;
	// cleanerCkpt and recovery are only read until every worker is done.
	opened := make([]*Log, len(jobs))
	failed, err := forEachBounded(len(jobs), cfg.RecoveryThreads, true, func(i int) error {
		j := jobs[i]
		id, err := readPartitionMetadata(j.dir)
		if err != nil {
			m.logger.Warn("partition.metadata unreadable; topic id unknown", "dir", j.dir, "error", err)
		}
		recoverFrom := int64(-1)
		if !m.clean {
			recoverFrom = recovery[j.tp] // 0 when never checkpointed: everything
		}
		cleanedTo, gaps := m.cleanerCkpt[j.tp]
		l, err := openLog(j.dir, j.tp, id, cfg.Log, recoverFrom, gaps, cfg.Now, m.logger, cfg.WritebackBytes)
		if err != nil {
			return err
		}
		m.attach(l, cleanedTo)
		opened[i] = l
		return nil
	})
	for i, l := range opened {
		if l != nil {
			m.logs[jobs[i].tp] = l
		}
	}
	if err != nil {
		m.closeLogs()
		lock.Close()
		return nil, fmt.Errorf("open log %s: %w", jobs[failed].dir, err)
	}
	// The marker is consumed: a crash from now on must be recovered.
	if err := removeFile(marker); err != nil {
		m.closeLogs()
		lock.Close()
		return nil, err
	}
	m.logger.Info("storage opened", "dir", cfg.Dir, "logs", len(m.logs), "clean_shutdown", m.clean,
		"previous_broker_epoch", m.previousEpoch, "took", cfg.Now().Sub(start).Round(time.Millisecond).String(),
		"recovery_threads", cfg.RecoveryThreads)
	return m, nil
}

// cleanShutdownMarker is the clean-shutdown marker's content, Kafka's JSON
// (KIP-966): the broker epoch at the clean shutdown. Frozen format.
type cleanShutdownMarker struct {
	Version     int   `json:"version"`
	BrokerEpoch int64 `json:"brokerEpoch"`
}

// readCleanShutdown says whether the marker exists and the broker epoch it
// records. A marker without one (the empty marker of older versions, or an
// unreadable one) still means the logs were flushed and closed: clean, but
// with epoch -1, so the broker registers as an unclean restart as far as
// the controller is concerned (it must catch up before it is eligible
// again: only availability is lost, never records).
func (m *Manager) readCleanShutdown(path string) (clean bool, epoch int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, -1
	}
	if len(b) == 0 {
		return true, -1
	}
	var x cleanShutdownMarker
	if err := json.Unmarshal(b, &x); err != nil || x.Version != 0 {
		m.logger.Warn("clean-shutdown marker unreadable; broker epoch unknown", "path", path, "error", err, "version", x.Version)
		return true, -1
	}
	return true, x.BrokerEpoch
}

// CleanShutdown says the directory had a clean-shutdown marker when opened.
func (m *Manager) CleanShutdown() bool { return m.clean }

// PreviousBrokerEpoch is the broker epoch recorded by the clean shutdown
// before this open, or -1 (no marker, or a marker without an epoch).
func (m *Manager) PreviousBrokerEpoch() int64 { return m.previousEpoch }

// SetBrokerEpoch sets the broker epoch Close records in the clean-shutdown
// marker (the broker's registration epoch as it shuts down; -1, the
// default, records none).
func (m *Manager) SetBrokerEpoch(epoch int64) { m.brokerEpoch.Store(epoch) }

// Dir is the data directory.
func (m *Manager) Dir() string { return m.cfg.Dir }

// Logs returns every open log.
func (m *Manager) Logs() map[TopicPartition]*Log {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[TopicPartition]*Log, len(m.logs))
	for tp, l := range m.logs {
		out[tp] = l
	}
	return out
}

// logSlice returns the open logs as a slice: cheaper than Logs for a pass
// over every log (no map to build).
func (m *Manager) logSlice() []*Log {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Log, 0, len(m.logs))
	for _, l := range m.logs {
		out = append(out, l)
	}
	return out
}

// Get returns an open log or nil.
func (m *Manager) Get(tp TopicPartition) *Log {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs[tp]
}

// GetOrCreate returns the log, creating its directory (with partition.metadata
// holding topicID) if it does not exist. Logs of different partitions are
// created concurrently: the manager's lock is not held while the files are
// written and fsynced. A call for a partition being created by another
// waits for that creation and returns its outcome.
//
// A new log's directory entry is made durable by the next
// recovery-point checkpoint (it fsyncs the data directory), not here: a
// machine crash before it may lose the new, empty log, which the broker
// creates again from the metadata when it restarts.
func (m *Manager) GetOrCreate(tp TopicPartition, topicID [16]byte, cfg LogConfig) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tp.Topic == "" || strings.ContainsAny(tp.Topic, "/\\") || tp.Topic == "." || tp.Topic == ".." || tp.Partition < 0 {
		return nil, fmt.Errorf("storage: invalid topic partition %q-%d", tp.Topic, tp.Partition)
	}
	m.mu.Lock()
	for {
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if l := m.logs[tp]; l != nil {
			m.mu.Unlock()
			return l, nil
		}
		c := m.creating[tp]
		if c == nil {
			break
		}
		m.mu.Unlock()
		<-c
		m.mu.Lock()
	}
	done := make(chan struct{})
	m.creating[tp] = done
	m.inflight.Add(1)
	m.mu.Unlock()

	l, err := m.create(tp, topicID, cfg)

	m.mu.Lock()
	delete(m.creating, tp)
	close(done)
	if err == nil && m.closed {
		_ = l.close()
		l, err = nil, ErrClosed
	}
	if err == nil {
		m.logs[tp] = l
	}
	m.mu.Unlock()
	m.inflight.Done()
	if err != nil {
		return nil, err
	}
	m.logger.Info("log created", "topic", tp.Topic, "partition", tp.Partition, "dir", l.dir)
	return l, nil
}

// create creates (or opens, when its directory is there already) the log
// of tp. Called by GetOrCreate, which makes it the only caller for tp.
func (m *Manager) create(tp TopicPartition, topicID [16]byte, cfg LogConfig) (*Log, error) {
	dir := filepath.Join(m.cfg.Dir, logDirName(tp))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, mapIOError(err)
	}
	if err := writePartitionMetadata(dir, topicID); err != nil {
		return nil, err
	}
	m.ckptMu.Lock()
	cleanedTo, gaps := m.cleanerCkpt[tp]
	m.ckptMu.Unlock()
	l, err := openLog(dir, tp, topicID, cfg, -1, gaps, m.cfg.Now, m.logger, m.cfg.WritebackBytes)
	if err != nil {
		return nil, err
	}
	m.attach(l, cleanedTo)
	return l, nil
}

// Delete closes the log and removes its directory (renamed first, so a crash
// midway leaves nothing that looks like a live log).
func (m *Manager) Delete(tp TopicPartition) error {
	m.mu.Lock()
	for m.creating[tp] != nil {
		// Being created: delete what the creation leaves.
		c := m.creating[tp]
		m.mu.Unlock()
		<-c
		m.mu.Lock()
	}
	l := m.logs[tp]
	delete(m.logs, tp)
	m.mu.Unlock()
	if l == nil {
		return nil
	}
	m.forgetCleaned(tp)
	if err := l.close(); err != nil {
		m.logger.Warn("closing deleted log", "topic", tp.Topic, "partition", tp.Partition, "error", err)
	}
	doomed := l.dir + "." + strings.ReplaceAll(uuid.NewString(), "-", "") + deleteSuffix
	if err := renameFile(l.dir, doomed); err != nil {
		return err
	}
	if err := removeAll(doomed); err != nil {
		return err
	}
	m.logger.Info("log deleted", "topic", tp.Topic, "partition", tp.Partition)
	return nil
}

// Start runs the background retention / flush / checkpoint loop until Close.
func (m *Manager) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	go m.loop()
	if m.cfg.CleanerInterval > 0 {
		m.cleanerDone = make(chan struct{})
		go m.cleanerLoop()
	}
}

func (m *Manager) loop() {
	defer close(m.done)
	retention := time.NewTicker(m.cfg.RetentionCheckInterval)
	defer retention.Stop()
	checkpoint := time.NewTicker(m.cfg.FlushCheckpointInterval)
	defer checkpoint.Stop()
	housekeeping := time.NewTicker(time.Second)
	defer housekeeping.Stop()
	var expire <-chan time.Time // nil: producer ids never expire
	if m.cfg.ProducerIDExpiration > 0 {
		t := time.NewTicker(m.cfg.ProducerIDExpirationCheckInterval)
		defer t.Stop()
		expire = t.C
	}
	for {
		select {
		case <-m.stop:
			return
		case <-retention.C:
			for _, l := range m.Logs() {
				l.applyRetention()
			}
		case <-checkpoint.C:
			if err := m.writeRecoveryPoints(); err != nil {
				m.logger.Error("cannot write recovery point checkpoint", "error", err)
			}
		case <-housekeeping.C:
			for _, l := range m.logSlice() {
				l.housekeep()
			}
		case <-expire:
			m.ExpireProducers()
		}
	}
}

// ExpireProducers drops, in every log, the producers whose last batch is
// older than ProducerIDExpiration (the loop runs it every
// ProducerIDExpirationCheckInterval) and returns how many.
func (m *Manager) ExpireProducers() int {
	if m.cfg.ProducerIDExpiration <= 0 {
		return 0
	}
	cutoff := m.cfg.Now().Add(-m.cfg.ProducerIDExpiration).UnixMilli()
	n := 0
	for _, l := range m.logSlice() {
		n += l.expireProducers(cutoff)
	}
	if n > 0 {
		m.logger.Info("producer ids expired", "producers", n, "older_than", m.cfg.ProducerIDExpiration)
	}
	return n
}

// ApplyRetention runs one retention pass now (the loop runs it every
// log.retention.check.interval.ms) and returns how many segments it removed.
func (m *Manager) ApplyRetention() int {
	n := 0
	for _, l := range m.Logs() {
		n += l.applyRetention()
	}
	return n
}

// Close flushes every log, writes checkpoints and the clean-shutdown marker
// (with the epoch of SetBrokerEpoch), and closes files. Idempotent.
func (m *Manager) Close() error {
	if !m.stopBackground() {
		return nil
	}
	first := m.closeLogs()
	if err := m.writeRecoveryPoints(); err != nil && first == nil {
		first = err
	}
	if first == nil {
		// Only a fully flushed directory gets the marker.
		marker, _ := json.Marshal(cleanShutdownMarker{Version: 0, BrokerEpoch: m.brokerEpoch.Load()})
		if err := writeFileAtomic(filepath.Join(m.cfg.Dir, cleanShutdownFile), marker); err != nil {
			first = err
		} else if err := syncDir(m.cfg.Dir); err != nil {
			first = err
		}
	}
	m.lock.Close()
	m.logger.Info("storage closed", "dir", m.cfg.Dir, "clean", first == nil)
	return first
}

// stopBackground marks the manager closed and waits for its retention,
// checkpoint and cleaner loops to end; false when it was closed already.
func (m *Manager) stopBackground() bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.closed = true
	started := m.started
	m.mu.Unlock()
	// A creation under way sees closed when it ends and closes its log.
	m.inflight.Wait()
	if started {
		close(m.stop)
		<-m.done
		if m.cleanerDone != nil {
			<-m.cleanerDone
		}
	}
	return true
}

// Abandon releases the directory as a killed process would: every file is
// closed without a flush, a checkpoint, a producer snapshot or the
// clean-shutdown marker, and the directory lock is released. Later calls
// on the manager and its logs fail with ErrClosed. For crash tests
// (storagetest.CrashableDir); a broker never calls it.
func (m *Manager) Abandon() {
	if !m.stopBackground() {
		return
	}
	for _, l := range m.Logs() {
		l.abandon()
	}
	m.lock.Close()
}

// closeLogs closes (flushes) every log on at most RecoveryThreads
// goroutines, logging each failure, and returns the error of the first
// failing log in topic-partition order.
func (m *Manager) closeLogs() error {
	logs := m.Logs()
	tps := make([]TopicPartition, 0, len(logs))
	for tp := range logs {
		tps = append(tps, tp)
	}
	sortTopicPartitions(tps)
	_, err := forEachBounded(len(tps), m.cfg.RecoveryThreads, false, func(i int) error {
		tp := tps[i]
		if err := logs[tp].close(); err != nil {
			m.logger.Error("closing log", "topic", tp.Topic, "partition", tp.Partition, "error", err)
			return fmt.Errorf("close log %s-%d: %w", tp.Topic, tp.Partition, err)
		}
		return nil
	})
	return err
}

func (m *Manager) readRecoveryPoints() map[TopicPartition]int64 {
	out, err := readOffsetCheckpoint(filepath.Join(m.cfg.Dir, recoveryCheckpointFile))
	if err != nil {
		m.logger.Warn("recovery point checkpoint unreadable; recovering whole logs", "error", err)
	}
	return out
}

func (m *Manager) writeRecoveryPoints() error {
	logs := m.Logs()
	points := make(map[TopicPartition]int64, len(logs))
	for tp, l := range logs {
		points[tp] = l.RecoveryPoint()
	}
	return writeOffsetCheckpoint(filepath.Join(m.cfg.Dir, recoveryCheckpointFile), points)
}

func logDirName(tp TopicPartition) string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

func parseLogDirName(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return TopicPartition{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != name[i+1:] {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: name[:i], Partition: int32(p)}, true
}

// partition.metadata, as Kafka writes it: the topic id in Kafka's
// URL-safe base64 form.
func writePartitionMetadata(dir string, id [16]byte) error {
	s := fmt.Sprintf("version: 0\ntopic_id: %s\n", base64.RawURLEncoding.EncodeToString(id[:]))
	return writeFileAtomic(filepath.Join(dir, partitionMetadataFile), []byte(s))
}

func readPartitionMetadata(dir string) ([16]byte, error) {
	var id [16]byte
	b, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile))
	if err != nil {
		return id, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id:"); ok {
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(raw) != 16 {
				return id, fmt.Errorf("bad topic_id %q", strings.TrimSpace(v))
			}
			copy(id[:], raw)
			return id, nil
		}
	}
	return id, errors.New("no topic_id line")
}

// RecoveryThreads is Config.RecoveryThreads: how many logs are opened,
// created or closed at once.
func (m *Manager) RecoveryThreads() int { return m.cfg.RecoveryThreads }
