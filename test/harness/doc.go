// Package harness starts real Skein processes (controllers and brokers) on
// loopback ports for end-to-end and fault tests, and drives them with real
// Kafka clients.
//
// What it owns:
//   - the skein binary: built once per test binary (or taken from
//     $SKEIN_BIN), see Binary and Main;
//   - processes: each node is an os/exec child with its own temporary data
//     directory and log file; Kill (SIGKILL), Stop (SIGTERM and wait),
//     Pause/Resume (SIGSTOP/SIGCONT) and Restart (same data directory, same
//     ports) inject the faults;
//   - machine crashes: with Options.FsyncJournal each broker writes a
//     journal of its fsyncs, renames and removes (SKEIN_FSYNC_JOURNAL), and
//     Node.MachineCrash kills it and cuts every file under its data
//     directory back to what the journal proves was fsynced (DropUnsynced);
//   - network faults: with Options.Proxies every broker's traffic goes
//     through loopback proxies (Proxy: Cut, Heal, Block by process), so
//     Cluster.Isolate cuts one broker off the others and the clients, and
//     Cluster.CutControllers cuts its controller connection;
//   - readiness: every start waits, with a deadline, until the node accepts
//     TCP connections and, for a broker, until the cluster lists it in
//     Metadata;
//   - evidence: when a test fails, the tail of every node's log is printed;
//     a node that exits without being asked to is reported as a failure;
//   - checking: Ledger records what a producer had acknowledged and Verify
//     checks a topic's full contents against it (nothing acknowledged lost,
//     nothing duplicated, offsets contiguous, order kept per partition);
//     VerifyRetained does the same from a log start retention moved, and
//     ReadPartitionLog parses a replica's .log files batch by batch so
//     replicas can be compared over the offsets they all still hold.
//
// Nothing here sleeps in place of a condition: WaitFor polls a condition
// until a deadline and fails the test with the condition's last reason.
//
// Environment:
//
//	SKEIN_BIN             use this binary instead of building ./cmd/skein
//	SKEIN_TEST_LOG_LEVEL  --log-level of the nodes (default info)
//
// Children never inherit the caller's SKEIN_* variables (they are the
// flags' environment twins and would silently change the nodes' config).
package harness
